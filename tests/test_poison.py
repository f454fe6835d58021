"""Poison tasks: a task that kills its worker every time is dead-lettered after ``max_recoveries``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from delayed_core import DeadLetter, PyTask, hookimpl
from delayed_core.interfaces import SweepReport
from tests.conftest import Backend

MODULE = __name__
REPO = Path(__file__).resolve().parent.parent
MAX_RECOVERIES = 2


def kill_my_worker(log: str) -> None:
    """Note the run in ``log``, then SIGKILL the process running this task (the whole worker)."""
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def start_worker(url: str) -> subprocess.Popen[bytes]:
    """``delayed worker`` in a subprocess, with liveness short enough for a fast test."""
    command = [
        sys.executable, "-m", "delayed_core.cli.main", "worker", "--broker", url, "--import", MODULE,
        "--keep-alive-timeout", "1", "--keep-alive-interval", "0.3", "--dequeue-timeout", "0.2",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow  # about 6 s: three worker processes, each waiting out a 1 s liveness TTL
def test_a_task_that_kills_every_worker_lands_in_dead_letters_as_poison(real_backend: Backend, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    app = real_backend.app(max_recoveries=MAX_RECOVERIES)
    app.queue().enqueue(PyTask(f"{MODULE}:kill_my_worker", [str(log)]))
    sweeper = app.sweeper(["default"])
    reports = []
    for attempt in range(1, MAX_RECOVERIES + 2):
        worker = start_worker(real_backend.url)
        try:
            worker.wait(20)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == -signal.SIGKILL, worker.stderr.read().decode() if worker.stderr else ""
        assert len(log.read_text().split()) == attempt
        assert real_backend.client.hlen("default_processing") == 1  # held by a dead worker
        # The worker's id expires within keep_alive_timeout (1 s); sweep until it does.
        deadline = time.monotonic() + 10
        while True:
            (report,) = sweeper.sweep_once()
            if report.requeued or report.poisoned:
                break
            assert time.monotonic() < deadline, "the sweeper never recovered the task"
            time.sleep(0.1)
        reports.append((report.requeued, report.poisoned))

    assert reports == [(1, 0)] * MAX_RECOVERIES + [(0, 1)]
    assert real_backend.client.llen("default") == 0 and real_backend.client.hlen("default_processing") == 0
    (raw,) = real_backend.client.lrange("default_dead", 0, -1)
    letter = DeadLetter.from_json(raw)
    assert letter.reason == "poison" and letter.attempts == MAX_RECOVERIES + 1
    assert app.serializer.loads(letter.task) == PyTask(f"{MODULE}:kill_my_worker", [str(log)])
    assert letter.error == f"recovered {MAX_RECOVERIES} times from workers that stopped holding it"
    # The recovery counter is cleaned up with the entry, so a requeued copy starts afresh.
    assert real_backend.client.hlen("default_recoveries") == 0


class SweepWatcher:
    """Sees each sweep's report."""

    def __init__(self) -> None:
        self.reports: list[SweepReport] = []

    @hookimpl
    def delayed_sweep_finished(self, queue: str, report: SweepReport) -> None:
        self.reports.append(report)


def test_max_recoveries_zero_requeues_forever(real_backend: Backend) -> None:
    watcher = SweepWatcher()
    app = real_backend.app(max_recoveries=0, plugins=[watcher])
    broker = app.broker("default")
    app.queue().enqueue(PyTask(f"{MODULE}:kill_my_worker", ["unused"]))
    for _ in range(4):
        # Simulate a worker that died holding the task: take it under an id whose liveness is gone.
        assert broker.dequeue("f" * 32, 1.0) is not None
        (report,) = app.sweeper(["default"]).sweep_once()
        assert (report.requeued, report.poisoned) == (1, 0)
    assert real_backend.client.llen("default_dead") == 0 and real_backend.client.exists("default_recoveries") == 0
    assert [(r.queue, r.requeued, r.poisoned) for r in watcher.reports] == [("default", 1, 0)] * 4


def record_run() -> None:
    """A task that simply succeeds."""


@pytest.mark.parametrize("take_next", [True, False])
def test_releasing_a_task_forgets_its_poison_count(real_backend: Backend, take_next: bool) -> None:
    """A task that ran to the end says nothing about poison any more: its count goes with the release,
    and separate enqueues of the same bytes start afresh. Other tasks' counts stay."""
    import hashlib

    client = real_backend.client
    app = real_backend.app()
    raw = app.serializer.dumps(PyTask(f"{MODULE}:record_run"))
    app.queue().enqueue(PyTask(f"{MODULE}:record_run"))
    client.hset("default_recoveries", mapping={hashlib.sha1(raw).hexdigest(): 3, "f" * 40: 1})
    broker = app.broker("default")
    assert broker.dequeue("e" * 32, 1.0) == raw
    assert broker.release("e" * 32, take_next=take_next) is None
    assert client.hgetall("default_recoveries") == {b"f" * 40: b"1"}
    # No count, no key: a release never creates N_recoveries.
    client.delete("default_recoveries")
    app.queue().enqueue(PyTask(f"{MODULE}:record_run"))
    app.worker(imports=[MODULE], dequeue_timeout=0.2).run(burst=True, install_signals=False)
    assert client.exists("default_recoveries") == 0 and client.llen("default") == 0


def test_the_memory_broker_forgets_the_poison_count_on_release_too() -> None:
    from delayed_core import Delayed

    app = Delayed("memory://poison-release", load_entry_points=False)
    broker = app.broker("default")
    broker.enqueue([b"task"])
    assert broker.dequeue("d" * 32, 0.1) == b"task"
    broker.go_offline(["d" * 32])
    assert broker.sweep(max_recoveries=5).requeued == 1  # counted once
    assert broker.dequeue("e" * 32, 0.1) == b"task"
    broker.release("e" * 32)
    broker.enqueue([b"task"])
    assert broker.dequeue("f" * 32, 0.1) == b"task"
    assert broker.sweep(max_recoveries=1).requeued == 1  # would be poison had the count stayed
