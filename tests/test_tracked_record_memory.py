"""A finished task's record takes Redis's compact hash encoding again once the task bytes are dropped
(about 210 bytes instead of 820: docs/benchmarks.md), with every field and its TTL kept."""

from __future__ import annotations

from delayed_core import PyTask
from tests import handle_tasks
from tests.conftest import Backend


def test_a_finished_record_is_compact_and_complete(real_backend: Backend) -> None:
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2)
    client = real_backend.client
    handle = app.queue().enqueue(PyTask(handle_tasks.add, [2, 3]), track=True)
    assert handle is not None
    key = f"delayed_task:{handle.id}"
    assert client.object("encoding", key) == b"hashtable"  # it holds the task bytes while pending
    app.worker().run(burst=True, install_signals=False)
    assert handle.result(timeout=5) == 5
    record = client.hgetall(key)
    assert client.object("encoding", key) == b"listpack"
    assert {b"s", b"fi", b"st", b"en", b"fn", b"r", b"a"} <= set(record) and b"t" not in record
    assert record[b"s"] == b"succeeded"
    assert 0 < client.pttl(key) <= 86_400_000
    assert client.memory_usage(key, samples=0) < 400


def test_a_record_with_a_long_value_stays_as_it_is(real_backend: Backend) -> None:
    """A result over 64 bytes keeps the record a hashtable: nothing is gained by writing it anew."""
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2)
    handle = app.queue().enqueue(PyTask(handle_tasks.big, [100]), track=True)
    assert handle is not None
    app.worker().run(burst=True, install_signals=False)
    assert len(handle.result(timeout=5)) == 100
    assert real_backend.client.object("encoding", f"delayed_task:{handle.id}") == b"hashtable"


def test_a_retried_record_keeps_only_how_the_task_ended(real_backend: Backend) -> None:
    """The first attempt failed (its traceback made the hash a hashtable), the retry succeeded: the record
    is written anew, compact, and without the first attempt's error."""
    app = real_backend.app(imports=[handle_tasks.__name__], dequeue_timeout=0.2, retry_backoff=0.0)
    client = real_backend.client
    client.delete("flaky-runs")
    handle = app.queue().enqueue(PyTask(handle_tasks.flaky, [real_backend.url], retry=1), track=True)
    assert handle is not None
    app.worker().run(burst=True, install_signals=False)
    assert handle.result(timeout=5) == "second time lucky"
    key = f"delayed_task:{handle.id}"
    record = client.hgetall(key)
    assert record[b"a"] == b"2" and not {b"em", b"tb", b"et", b"t", b"m"} & set(record)
    assert client.object("encoding", key) == b"listpack"
