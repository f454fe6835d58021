"""``--prefetch K`` through the public API, on the memory broker, fakeredis and a real redis-server:
retries, dead letters, task handles and a lost batch reply still behave as with K = 1. (Rate limits:
test_rate_limit.py; as a user runs it, with kills and signals: test_prefetch_cli.py.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from delayed_core import DeadLetter, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_core.interfaces.batches import Finished, Held
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
    reads what its ids hold and carries on, each task running exactly once."""
    app = target.app(imports=[MODULE], dequeue_timeout=0.2, prefetch=4)
    app.queue().enqueue_many([PyTask(f"{MODULE}:record", [n]) for n in range(12)])
    worker = app.worker()
    broker = worker.runner.consumer
    real = broker.release_take_batch  # type: ignore[attr-defined]
    calls = Counter[str]()

    def flaky(done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
              queues: Sequence[str]) -> list[Held]:
        calls["batch"] += 1
        if calls["batch"] == 3:
            raise BrokerUnavailable("connection lost before the call")
        taken = real(done, unstarted, take_ids, queues)
        if calls["batch"] == 2:
            raise BrokerUnavailable("connection lost after the call")
        return taken

    monkeypatch.setattr(broker, "release_take_batch", flaky)
    worker.run(burst=True, install_signals=False)
    assert calls["batch"] >= 4
    assert runs("record") == Counter(range(12))
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
