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
    pending = client.get(key)  # one string while pending too, holding the task bytes
    assert pending.endswith(client.lindex("default", 0)) and b" queued\n" in pending
    enqueued = int(pending.partition(b" ")[0])
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


def test_a_waiting_tasks_record_is_one_string(real_backend: Backend) -> None:
    """A plain enqueue's pending record holds a copy of the task bytes (to find the task when cancelling,
    and to see which worker holds it). As a hash, a task over 64 bytes (most are) took it out of Redis's
    compact encoding: about 600 bytes a record; as one string, about half.
    Tracking also adds at most 40 bytes to a task (its id, and the two fields before meta)."""
    app = real_backend.app()
    client = real_backend.client
    plain = PyTask("an.application.module.with_a_long_path:send_the_report", [1, "two"])
    app.queue().enqueue(plain)
    handle = app.queue().enqueue(plain, track=True)
    assert handle is not None
    untracked, tracked = client.lrange("default", 0, -1)
    assert len(tracked) > 64 and len(tracked) - len(untracked) <= 40
    key = f"delayed_task:{handle.id}"
    assert client.type(key) == b"string" and client.get(key).endswith(tracked)
    # the hash of the same fields it replaces, for scale
    client.hset("old-form", mapping={"s": "queued", "q": "default", "fn": plain.func_path, "t": tracked, "en": 1})
    assert client.memory_usage(key, samples=0) < 0.6 * client.memory_usage("old-form", samples=0)
    record = handle.record()
    assert (record.status, record.queue, record.func) == ("queued", "default", plain.func_path)
