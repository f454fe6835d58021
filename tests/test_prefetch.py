"""``--prefetch K`` through the public API, on the memory broker, fakeredis and a real redis-server:
retries, dead letters, task handles and a lost batch reply still behave as with K = 1. (Rate limits:
test_rate_limit.py; as a user runs it, with kills and signals: test_prefetch_cli.py.)"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from delayed_core import DeadLetter, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_core.interfaces.batches import Batches, Finished, Held
from tests import worker_tasks
from tests.conftest import Backend
from tests.support.any_broker import MODULE, Target, _reset_calls, broker_target, drain  # noqa: F401 - fixtures


def runs(name: str) -> Counter[object]:
    """How often each first argument of ``name`` calls was run."""
    return Counter(call[1][0] for call in worker_tasks.calls if call[0] == name)


def test_every_task_runs_once_and_failures_settle_as_usual(target: Target) -> None:
    app = target.app()
    app.queue().enqueue_many([
        *(PyTask(f"{MODULE}:record", [n]) for n in range(30)),
        PyTask(f"{MODULE}:fail_times", ["twice", 2], retry=2),  # fails twice, then succeeds
        PyTask(f"{MODULE}:always_fail", retry=1),  # 2 runs, then a dead letter
        PyTask("os:getcwd"),  # not allowed: a dead letter, never run
    ])
    drain(target, prefetch=8, slots=2, retry_backoff=0.0)  # a burst worker would not wait for a backoff
    assert runs("record") == Counter(range(30))
    assert runs("fail_times") == Counter({"twice": 3})
    assert len([call for call in worker_tasks.calls if call[0] == "always_fail"]) == 2
    reasons = sorted(DeadLetter.from_json(raw).reason for raw in target.broker().dead_letters())
    assert reasons == ["failed", "not_allowed"]
    info = target.broker().info()
    assert (info.length, info.scheduled, info.processing) == (0, 0, {})


def test_tracked_tasks_report_their_results(target: Target) -> None:
    app = target.app(prefetch=8, dequeue_timeout=0.2)

    @app.task(name="tests.test_prefetch:add")
    def add(a: int, b: int) -> int:
        return a + b

    handles = [add.delay(n, 1) for n in range(20)]
    app.worker().run(burst=True, install_signals=False)
    assert [handle.result(timeout=5) for handle in handles] == [n + 1 for n in range(20)]
    assert {handle.status() for handle in handles} == {"succeeded"}


def test_a_lost_batch_reply_neither_loses_nor_reruns_a_task(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second batch call happens but its reply is lost, the third fails before it happens: the slot
    reads what its ids hold and carries on, each task running exactly once. (Calls are sent while tasks
    run, and their replies read later: the reply is lost when it is read.)"""
    app = target.app(imports=[MODULE], dequeue_timeout=0.2, prefetch=16)  # 16: calls sent while tasks run
    app.queue().enqueue_many([PyTask(f"{MODULE}:record", [n]) for n in range(40)])
    worker = app.worker()
    broker = worker.runner.consumer
    real = broker.start_release_take_batch  # type: ignore[attr-defined]
    calls = Counter[str]()

    def flaky(done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
              queues: Sequence[str]) -> Callable[[], list[Held]]:
        calls["batch"] += 1
        if calls["batch"] == 3:
            raise BrokerUnavailable("connection lost before the call")
        reply = real(done, unstarted, take_ids, queues)
        if calls["batch"] != 2:
            return reply

        def lost() -> list[Held]:
            reply()
            raise BrokerUnavailable("connection lost after the call")

        return lost

    monkeypatch.setattr(broker, "start_release_take_batch", flaky)
    worker.run(burst=True, install_signals=False)
    assert calls["batch"] >= 4
    assert runs("record") == Counter(range(40))
    info = target.broker().info()
    assert (info.length, info.processing) == (0, {})


@pytest.mark.parametrize("queues", [["solo"], ["high", "low"]])
def test_the_cluster_key_layout_prefetches_too(real_backend: Backend, queues: list[str]) -> None:
    """One queue: the batch script in the queue's slot; several: the one-task calls (no call spans slots)."""
    app = real_backend.app(key_layout="cluster", imports=[MODULE], dequeue_timeout=0.2, prefetch=4)
    for queue in queues:
        app.queue(queue).enqueue_many([PyTask(f"{MODULE}:record", [f"{queue}{n}"]) for n in range(6)])
    app.worker(queues).run(burst=True, install_signals=False)
    assert [call[1][0] for call in worker_tasks.calls] == [f"{queue}{n}" for queue in queues for n in range(6)]
    assert all(app.broker(queue).info().processing == {} for queue in queues)


def _claimed(broker: object, count: int) -> list[str]:
    ids = [uuid.uuid4().hex for _ in range(count)]
    assert all(broker.claim_worker_id(worker_id, 60) for worker_id in ids)  # type: ignore[attr-defined]
    return ids


def test_a_batch_counts_every_release_and_forgets_their_poison_counts(backend: Backend) -> None:
    """The script releases a queue's tasks with one HDEL: the dashboard's counter still counts each one,
    and a released task's recovery count still goes (where the Lua host has redis.sha1hex)."""
    broker = backend.app().broker("jobs")
    assert isinstance(broker, Batches)
    ids = _claimed(broker, 4)
    broker.enqueue([f"t{n}".encode() for n in range(6)])  # type: ignore[attr-defined]
    taken = broker.release_take_batch((), (), ids, ("jobs",))
    backend.client.hset("jobs_recoveries", mapping={hashlib.sha1(b"t1").hexdigest(): 2, "other": 1})
    again = broker.release_take_batch([Finished(held) for held in taken], (), ids, ("jobs",))
    assert [held.task for held in again] == [b"t4", b"t5"]
    assert sum(broker.throughput().done) == 4  # type: ignore[attr-defined]
    if backend.name == "real":  # fakeredis's Lua has no redis.sha1hex: the count stays there, as before
        assert backend.client.hkeys("jobs_recoveries") == [b"other"]
    assert broker.release_take_batch([Finished(held) for held in again], (), (), ("jobs",)) == []
    assert sum(broker.throughput().done) == 6  # type: ignore[attr-defined]
    assert backend.client.hlen("jobs_processing") == 0


def test_a_batch_call_sent_now_is_read_later(real_backend: Backend) -> None:
    """The slot's thread sends other commands while the reply waits, and a server that lost the script
    (a restart, SCRIPT FLUSH) gets it again."""
    broker = real_backend.app().broker("jobs")
    assert isinstance(broker, Batches)
    ids = _claimed(broker, 3)
    broker.enqueue([b"t0", b"t1", b"t2", b"t3"])  # type: ignore[attr-defined]
    assert broker.release_take_batch((), (), (), ("jobs",)) == []  # loads the script
    reply = broker.start_release_take_batch((), (), ids, ("jobs",))
    # The thread's own commands meanwhile read their own replies (the batch call has its own connection).
    broker.enqueue([b"t4"])  # type: ignore[attr-defined]
    assert len(broker) in (2, 5)  # type: ignore[arg-type]  # (whether the server ran the batch call yet)
    taken = reply()
    assert [(held.worker_id, held.task) for held in taken] == list(zip(ids, (b"t0", b"t1", b"t2"), strict=True))
    real_backend.client.script_flush()  # NOSCRIPT: the call did not run; read, it loads the script and runs
    reply = broker.start_release_take_batch([Finished(held) for held in taken], (), ids, ("jobs",))
    assert [held.task for held in reply()] == [b"t3", b"t4"]
    assert real_backend.client.hlen("jobs_processing") == 2
