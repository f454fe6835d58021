"""The crash-point harness's ``disconnect`` mode with the worker in a thread of the test process.

A ``disconnect`` kills no process: at the armed point the server closes every connection the worker holds
(``delayed_redis.testing.cut_connections``), and the worker must carry on and drain the queue alone,
within the documented duplicates. That needs no process of its own, so this runs the same case as
:class:`delayed_core.testing.crash_run.CrashHarness` for a fraction of its cost (three interpreter starts
per case): the same task function and files, the same :class:`CrashAction`, the same worker settings and
the same :class:`CrashReport` for :func:`check_recovered`.

What the harness gets from separate processes is kept: the cut must reach the worker's connections only,
not the sweeper's nor those of the app that enqueues and watches. The server listens on two loopback
addresses; the worker connects through the first, everything else through the second, and
``cut_connections`` (which matches the worker broker's address) leaves the second alone.

Not for ``before_hand_back``: it needs the worker process to exit on SIGTERM and leave its task thread
behind, so the subprocess harness runs it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from delayed_core import Delayed, PyTask, crashpoints, hookimpl
from delayed_core.testing import crash_tasks
from delayed_core.testing.crash_run import CrashCase, CrashReport
from delayed_core.testing.crashpoint_plugin import CrashAction
from delayed_core.testing.processes import wait_until
from delayed_redis.testing import cut_connections

#: the worker's address of the test server; every other client uses SIDE_HOST
WORKER_HOST = "127.0.0.1"
SIDE_HOST = "127.0.0.2"
#: redis-server arguments that make it listen on both
BIND_BOTH = ["--bind", WORKER_HOST, SIDE_HOST]


class _Arm:
    """Plugin: hands the worker's broker and the cut to the action, as the worker-side plugin does."""

    def __init__(self, action: CrashAction, fired: threading.Event) -> None:
        self.action, self.fired = action, fired

    @hookimpl
    def delayed_worker_started(self, worker: Any) -> None:
        def cut(broker: Any) -> int:
            killed = cut_connections(broker)
            self.fired.set()
            return killed

        self.action.broker = worker.broker
        self.action.cut = cut


def run_disconnect_case(port: int, case: CrashCase, work_dir: Path, fire_timeout: float = 20.0,
                        drain_timeout: float = 30.0) -> CrashReport:
    """Run one ``disconnect`` case against the server on ``port`` (started with :data:`BIND_BOTH`)."""
    if case.mode != "disconnect" or case.point == "before_hand_back":
        raise ValueError(f"{case.label}: only disconnect cases other than before_hand_back run in-process")
    queue = f"crash-{case.label}-{secrets.token_hex(3)}"
    run_dir = work_dir / queue
    run_dir.mkdir(parents=True)
    report = CrashReport(case)
    started = time.monotonic()
    side = Delayed(f"redis://{SIDE_HOST}:{port}/0", load_entry_points=False, sweeper_interval=0.25,
                   max_recoveries=0)  # a held task must be requeued, never dead-lettered
    retry = case.point == "before_retry_requeue"
    side.queue(queue).enqueue_many([PyTask(f"{crash_tasks.__name__}:record", [str(run_dir), i, 0.0, retry],
                                           retry=1 if retry else 0) for i in range(case.tasks)])
    fired = threading.Event()
    action = CrashAction(case.point, case.mode, case.reach, os.getpid())
    # The harness's worker settings (crash_run.CrashHarness._worker_args), one slot.
    app = Delayed(f"redis://{WORKER_HOST}:{port}/0", load_entry_points=False, plugins=[_Arm(action, fired)],
                  imports=[crash_tasks.__name__], slots=1, executor=case.executor, keep_alive_timeout=1.0,
                  keep_alive_interval=0.25, dequeue_timeout=0.5, shutdown_timeout=0)
    worker = app.worker(queue)
    sweeper = side.sweeper([queue])
    threads = [threading.Thread(target=sweeper.run, kwargs={"install_signals": False}, daemon=True),
               threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)]
    broker = side.broker(queue)

    def drained() -> bool:
        info = broker.info()
        return len(set(_lines(run_dir / "done"))) >= case.tasks and info.length == 0 and not info.processing

    crashpoints.install(action)
    try:
        for thread in threads:
            thread.start()
        report.fired = wait_until(lambda: fired.is_set() or not threads[1].is_alive(), fire_timeout) \
            and fired.is_set()
        wait_until(drained, drain_timeout, interval=0.05)
        report.survived = threads[1].is_alive()
        report.dead_letters = broker.info().dead
    finally:
        crashpoints.install(None)
        worker.stop()
        sweeper.stop()
        for thread in threads:
            thread.join(10)
        app.close()
        side.close()
    runs = Counter(int(line) for line in _lines(run_dir / "done"))  # task number -> completed runs
    report.lost = [task for task in range(case.tasks) if task not in runs]
    report.duplicates = sum(runs.values()) - len(runs)
    report.seconds = time.monotonic() - started
    report.diagnosis = f"started: {_lines(run_dir / 'started')}\ncompleted runs: {dict(runs)}\n" \
                       f"reaches of the point: {action.reaches}"
    return report


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []
