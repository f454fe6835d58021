"""A settled task's record is one string (``"<enqueued ms> <status>\\n"`` and a msgpack map), written by
one SET over the pending hash: smaller than the hash (docs/benchmarks.md), with every field and its TTL."""

from __future__ import annotations

from typing import Any

import msgpack

from delayed_core import PyTask
from tests import handle_tasks
from tests.conftest import Backend


def settled(client: Any, key: str) -> tuple[int, str, dict[str, Any]]:
    """The enqueue time, the status and the other fields of the settled record at ``key``."""
    assert client.type(key) == b"string"
    head, _, body = client.get(key).partition(b"\n")
    enqueued, _, status = head.partition(b" ")
    return int(enqueued), status.decode(), msgpack.unpackb(body)


def test_a_finished_record_is_one_small_string_and_complete(real_backend: Backend) -> None:
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2)
    client = real_backend.client
    handle = app.queue().enqueue(PyTask(handle_tasks.add, [2, 3]), track=True)
    assert handle is not None
    key = f"delayed_task:{handle.id}"
    assert client.type(key) == b"hash" and b"t" in client.hgetall(key)  # it holds the task bytes while pending
    enqueued = int(client.hget(key, "en"))
    app.worker().run(burst=True, install_signals=False)
    assert handle.result(timeout=5) == 5
    assert settled(client, key)[:2] == (enqueued, "succeeded")
    fields = settled(client, key)[2]
    assert {"fi", "st", "fn", "q", "r", "a", "w"} <= set(fields) and not {"t", "s", "en"} & set(fields)
    assert fields["q"] == "default" and fields["fn"] == handle_tasks.add.__module__ + ":add"
    assert 0 < client.pttl(key) <= 86_400_000
    assert client.memory_usage(key, samples=0) <= 264  # the compact hash of the previous version's: 264
    record = handle.record()
    assert record.enqueued == enqueued / 1000 and record.finished >= record.started and record.attempts == 1


def test_a_record_with_a_long_value_holds_it(real_backend: Backend) -> None:
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2)
    handle = app.queue().enqueue(PyTask(handle_tasks.big, [100]), track=True)
    assert handle is not None
    app.worker().run(burst=True, install_signals=False)
    assert len(handle.result(timeout=5)) == 100
    assert real_backend.client.type(f"delayed_task:{handle.id}") == b"string"


def test_a_retried_record_keeps_only_how_the_task_ended(real_backend: Backend) -> None:
    """The first attempt failed (its record, a hash, held the error and the retry's bytes), the retry
    succeeded: the settled record holds neither."""
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2, retry_backoff=0.0)
    client = real_backend.client
    client.delete("flaky-runs")
    handle = app.queue().enqueue(PyTask(handle_tasks.flaky, [real_backend.url], retry=1), track=True)
    assert handle is not None
    app.worker().run(burst=True, install_signals=False)
    assert handle.result(timeout=5) == "second time lucky"
    _, status, fields = settled(client, f"delayed_task:{handle.id}")
    assert status == "succeeded" and fields["a"] == 2 and not {"em", "tb", "et", "t", "m"} & set(fields)


def test_a_small_waiting_tasks_record_keeps_the_compact_hash(real_backend: Backend) -> None:
    """A pending record holds a copy of the task bytes; while they stay within Redis's compact-hash limit
    (hash-max-listpack-value, 64 bytes by default) the record costs about 260 bytes, past it about 570.
    Tracking adds 40 bytes to a task (its id, and the two fields before meta); 12 more bytes of meta once
    doubled the memory of a waiting small task (docs/benchmarks.md, "Redis memory per item")."""
    app = real_backend.app()
    client = real_backend.client
    plain = PyTask("jobs:f", [1])
    app.queue().enqueue(plain)
    handle = app.queue().enqueue(plain, track=True)
    assert handle is not None
    untracked, tracked = client.lrange("default", 0, -1)
    assert len(tracked) - len(untracked) <= 40
    key = f"delayed_task:{handle.id}"
    assert client.hget(key, "t") == tracked and len(tracked) <= 64
    assert client.object("encoding", key) in (b"listpack", b"ziplist")  # ziplist: Redis 6
    assert client.memory_usage(key, samples=0) <= 300
