"""One crash-point run: enqueue N recorded tasks, kill a worker at a named boundary, recover, count.

A run, for one (point, mode, executor) case, on any broker a URL names:

1. enqueue ``tasks`` tasks of :func:`delayed_core.testing.crash_tasks.record` on a fresh queue;
2. start a sweeper and an *armed* worker (one slot, the crash-point plugin set by environment);
3. wait until the plugin logs that the point fired (for ``before_hand_back``: SIGTERM the worker while
   its first task runs, with a shutdown timeout of 0, so that it hands that task back);
4. after a SIGKILL (or a hand-back, where the worker exits) start a replacement worker; after a
   ``disconnect`` the armed worker must carry on and drain the queue alone;
5. poll until every task ran, the queue is empty and nothing is held, or the drain timeout passes;
6. report the tasks that never ran (lost) and the runs beyond the first (duplicates).
"""

from __future__ import annotations

import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from delayed_core import crashpoints
from delayed_core.app import Delayed
from delayed_core.task import PyTask

from . import crash_tasks
from .crash_switches import AFTER_VARIABLE, FIRED, MODE_VARIABLE, MODES, PLUGIN_MODULE, POINT_VARIABLE
from .processes import Process, wait_until

TASKS_MODULE = crash_tasks.__name__
#: seconds the task running at a SIGTERM sleeps on its first run: far longer than any run takes
HAND_BACK_SLEEP = 30.0
#: points a worker busy with a full queue reaches only once
ONCE_PER_WORKER = ("after_blpop", "after_dequeue", "before_hand_back")

#: The documented bound: most extra completed runs one crash may cause, per (point, mode). One crash
#: concerns one held task, so no entry is above 1; 0 where the protocol guarantees it.
MAX_DUPLICATES: dict[tuple[str, str], int] = {
    ("after_blpop", "sigkill"): 0,  # no task taken yet
    ("after_dequeue", "sigkill"): 0,  # held, not started: recovered and run once
    ("mid_task", "sigkill"): 0,  # the cut-short run completed nothing
    ("after_task", "sigkill"): 1,  # ran, not released: the at-least-once duplicate
    ("after_release_take", "sigkill"): 0,  # released; the next task held but not started
    ("before_retry_requeue", "sigkill"): 0,  # the failed attempt completed nothing
    ("before_hand_back", "sigkill"): 1,  # a thread cannot be stopped: the task may finish meanwhile
    ("after_blpop", "disconnect"): 0,
    # A dropped connection loses the release reply: the slot runs again what it still holds (1).
    ("after_dequeue", "disconnect"): 1,
    ("mid_task", "disconnect"): 1,
    ("after_task", "disconnect"): 1,
    ("after_release_take", "disconnect"): 1,
    ("before_retry_requeue", "disconnect"): 0,
    ("before_hand_back", "disconnect"): 1,
}


@dataclass(frozen=True)
class CrashCase:
    """What to break: a point of :data:`delayed_core.crashpoints.POINTS`, a mode, an executor.

    :param after: act at this reach of the point; by default the 3rd (a few tasks in, not just at
        start-up), except where a busy worker reaches the point only once: an idle slot's BLPOP and dequeue
        (a busy one takes its next task in the release), and the one hand-back of a SIGTERM.
    """

    point: str
    mode: str = "sigkill"
    executor: str = "thread"
    tasks: int = 20
    after: int | None = None

    def __post_init__(self) -> None:
        if self.point not in crashpoints.POINTS:
            raise ValueError(f"unknown crash point {self.point!r}; choose from {', '.join(crashpoints.POINTS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")

    @property
    def reach(self) -> int:
        """The reach of the point at which the worker breaks."""
        if self.after is not None:
            return self.after
        if self.point == "mid_task" and self.executor == "fork":
            return 1  # every task runs in a new child, forked with a count of 0
        return 1 if self.point in ONCE_PER_WORKER else 3

    @property
    def label(self) -> str:
        """``point-mode-executor``."""
        return f"{self.point}-{self.mode}-{self.executor}"


@dataclass
class CrashReport:
    """What one run measured."""

    case: CrashCase
    fired: bool = False
    lost: list[int] = field(default_factory=list)
    duplicates: int = 0
    dead_letters: int = 0
    survived: bool | None = None
    seconds: float = 0.0
    diagnosis: str = ""

    @property
    def bound(self) -> int:
        """The documented most duplicates for this case."""
        return MAX_DUPLICATES[(self.case.point, self.case.mode)]

    def summary(self) -> str:
        """One line."""
        survived = "" if self.survived is None else f", worker carried on: {self.survived}"
        return (f"{self.case.label}: fired {self.fired}, lost {len(self.lost)}, duplicates {self.duplicates} "
                f"(bound {self.bound}), dead letters {self.dead_letters}{survived}, {self.seconds:.1f}s")


@dataclass
class CrashHarness:
    """Runs :class:`CrashCase` s against the broker at ``broker_url``, keeping files under ``work_dir``.

    The short liveness settings make recovery take about a second (the keep-alive timeout plus one
    sweep); ``extra_worker_args`` go to every worker (a third-party broker's ``--plugin``, say).
    """

    broker_url: str
    work_dir: Path
    keep_alive_timeout: float = 1.0
    keep_alive_interval: float = 0.25
    sweeper_interval: float = 0.25
    fire_timeout: float = 20.0
    drain_timeout: float = 30.0
    extra_worker_args: tuple[str, ...] = ()

    def run(self, case: CrashCase) -> CrashReport:
        """Run one case; always stops every process it started."""
        queue = f"crash-{case.label}-{secrets.token_hex(3)}"
        run_dir = self.work_dir / queue
        run_dir.mkdir(parents=True)
        report = CrashReport(case)
        started = time.monotonic()
        app = Delayed(self.broker_url)
        processes: list[Process] = []
        try:
            app.queue(queue).enqueue_many(self._tasks(case, run_dir))
            processes.append(Process("sweeper", self._sweeper_args(queue), run_dir))
            armed = Process("worker-armed", self._worker_args(queue, case), run_dir, {
                POINT_VARIABLE: case.point, MODE_VARIABLE: case.mode, AFTER_VARIABLE: str(case.reach),
            })
            processes.append(armed)
            if case.point == "before_hand_back":
                # SIGTERM while task 0 (the slow one) runs: at the shutdown timeout of 0 it is handed back.
                wait_until(lambda: "0" in _lines(run_dir / "started"), self.fire_timeout)
                armed.signal(signal.SIGTERM)
            marker = FIRED.format(point=case.point)
            report.fired = wait_until(lambda: marker in armed.log() or not armed.alive(), self.fire_timeout) \
                and marker in armed.log()
            if case.mode == "sigkill" or case.point == "before_hand_back":
                processes.append(Process("worker-replacement", self._worker_args(queue, case), run_dir))
            broker = app.broker(queue)

            def drained() -> bool:
                info = broker.info()
                return (len(set(_lines(run_dir / "done"))) >= case.tasks and info.length == 0
                        and not info.processing)

            wait_until(drained, self.drain_timeout, interval=0.05)
            if case.mode == "disconnect" and case.point != "before_hand_back":
                report.survived = armed.alive()
            report.dead_letters = broker.info().dead
        finally:
            for process in reversed(processes):
                process.stop()
            app.close()
        done = [int(line) for line in _lines(run_dir / "done")]
        report.lost = sorted(set(range(case.tasks)) - set(done))
        report.duplicates = len(done) - len(set(done))
        report.seconds = time.monotonic() - started
        if report.lost or not report.fired or report.duplicates > report.bound:
            report.diagnosis = "\n".join(f"--- {p.name}\n{p.log()[-2500:]}" for p in processes)
        return report

    def _tasks(self, case: CrashCase, run_dir: Path) -> list[PyTask]:
        func = f"{TASKS_MODULE}:record"
        hand_back, retry = case.point == "before_hand_back", case.point == "before_retry_requeue"
        return [PyTask(func, [str(run_dir), i, HAND_BACK_SLEEP if hand_back and i == 0 else 0.0, retry],
                       retry=1 if retry else 0)
                for i in range(case.tasks)]

    def _worker_args(self, queue: str, case: CrashCase) -> list[str]:
        return [
            "worker", "--broker", self.broker_url, "--queue", queue, "--slots", "1",
            "--executor", case.executor, "--import", TASKS_MODULE, "--plugin", PLUGIN_MODULE,
            "--keep-alive-timeout", str(self.keep_alive_timeout),
            "--keep-alive-interval", str(self.keep_alive_interval), "--dequeue-timeout", "0.5",
            "--shutdown-timeout", "0", *self.extra_worker_args,
        ]

    def _sweeper_args(self, queue: str) -> list[str]:
        # --max-recoveries 0: a task held by a killed worker must be requeued, never dead-lettered.
        return ["sweeper", "--broker", self.broker_url, "--queue", queue,
                "--interval", str(self.sweeper_interval), "--max-recoveries", "0"]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []
