"""Supervisor: ``delayed worker --processes N`` runs N worker processes under one parent.

Each child is a plain ``delayed worker`` (the same command line without ``--processes``), started with
:mod:`subprocess` as a fresh interpreter. Why not :mod:`multiprocessing`: a fork would copy whatever
threads and locks the parent holds (the metrics HTTP thread, logging locks), ``spawn`` would pickle the
app and add a resource-tracker process, and neither would give a child that is exactly the worker a user
runs by hand. ``subprocess`` forks only to ``exec`` at once, so nothing of the parent leaks into a child.

The parent:

- forwards SIGTERM, SIGINT and SIGHUP to every child (a second signal too, so the second-signal fast stop
  of a worker still works) and stops restarting them;
- restarts a child that exits on its own, after a capped backoff per child (reset once the child has
  run for :data:`STABLE_AFTER` seconds), so children that crash at once never make a hot loop;
- escalates when a stop takes too long: the signal again after ``shutdown_timeout`` + :data:`GRACE`,
  SIGKILL after another :data:`GRACE`;
- owns a temporary ``PROMETHEUS_MULTIPROC_DIR`` for the children, and lets plugins that can aggregate it
  (the metrics plugin) serve it from the parent.

Children run in their own process group, so that a Ctrl-C in a terminal reaches them once, through the
parent, instead of twice (which a worker would take as "stop now").
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import signals
from .backoff import Backoff

if TYPE_CHECKING:
    from .app import Delayed

logger = logging.getLogger("delayed.supervisor")

#: a child that ran this long before dying is restarted after the shortest delay again
STABLE_AFTER = 30.0
#: extra seconds a stopping child gets beyond shutdown_timeout before the parent escalates
GRACE = 10.0
#: how often the parent looks at its children when it cannot hear SIGCHLD (run outside the main thread,
#: or on a platform without it); with the signal, an exit wakes it at once and it sleeps until a deadline
TICK = 0.1
#: the signal a child's exit sends the parent (None where there is none: Windows)
SIGCHLD = getattr(signal, "SIGCHLD", None)
#: set in every child's environment: its index (the metrics plugin then leaves serving to the parent)
CHILD_ENV = "DELAYED_SUPERVISED"


def cpu_count() -> int:
    """CPUs this process may run on (``taskset`` and cgroup cpusets respected), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def describe_status(returncode: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL``, for the restart log line."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass
class Child:
    """One supervised worker process and its restart state."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=30.0))
    returncode: int | None = None


class Supervisor:
    """Runs ``processes`` copies of ``command`` until stopped.

    :param command: the child command line (a ``delayed worker`` without ``--processes``).
    :param processes: how many children.
    :param shutdown_timeout: the workers' own stop budget, to know when to escalate.
    :param burst: children exit 0 once the queue is empty; such an exit is final, not a crash.
    """

    def __init__(self, command: Sequence[str], processes: int, shutdown_timeout: float,
                 burst: bool = False) -> None:
        self.command = list(command)
        self.children = [Child(index) for index in range(processes)]
        self.shutdown_timeout = shutdown_timeout
        self.burst = burst
        self.metrics_dir = tempfile.mkdtemp(prefix="delayed-metrics-")
        self._signals: list[int] = []
        self._wake = signals.Wakeup()  # set by the signal handlers: not a threading.Event (see Wakeup)
        self._hears_children = False  # SIGCHLD handled: no need to look at the children every TICK

    # -- children --------------------------------------------------------------------------------
    def _environment(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        env[CHILD_ENV] = str(child.index)
        return env

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(self.command, env=self._environment(child), start_new_session=True)
        child.started = time.monotonic()
        child.restart_at = None
        logger.info("worker process %d started (pid %d)", child.index, child.process.pid)

    def _reap(self, child: Child, stopping: bool) -> None:
        """Notice a child's exit; schedule its restart when the exit was not asked for."""
        process = child.process
        if process is None or process.poll() is None:
            return
        child.process, child.returncode = None, process.returncode
        # A dead child's metric files stay in metrics_dir: its counts remain part of the totals.
        if stopping or (self.burst and process.returncode == 0):
            return
        lived = time.monotonic() - child.started
        if lived >= STABLE_AFTER:
            child.backoff.reset()
        delay = child.backoff.next_delay()
        child.restart_at = time.monotonic() + delay
        logger.error("worker process %d (pid %d) died after %.1fs, %s; restarting in %.1fs",
                     child.index, process.pid, lived, describe_status(process.returncode), delay)

    def _send(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)  # a no-op if it exited since poll()

    # -- signals ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Only record it: the main loop forwards, outside the handler (Popen is not reentrant).
        self._signals.append(signum)
        self._wake.set()

    def _on_child_exit(self, _signum: int, _frame: Any) -> None:
        self._wake.set()  # the main loop reaps: a child's exit is seen at once, not within a TICK

    # -- main loop -------------------------------------------------------------------------------
    def run(self) -> int:
        """Start the children and supervise them; return 0 when every child stopped cleanly."""
        child_signals = () if SIGCHLD is None else (SIGCHLD,)
        try:
            with signals.handling(self._on_signal), signals.handling(self._on_child_exit, child_signals), \
                    self._wake.on_signals():
                self._hears_children = bool(child_signals) and threading.current_thread() is threading.main_thread()
                try:
                    for child in self.children:
                        self._start(child)
                    return self._supervise()
                finally:
                    self._send(signal.SIGKILL)  # only children still alive after an error in the loop itself
                    shutil.rmtree(self.metrics_dir, ignore_errors=True)
        finally:
            self._wake.close()  # the handlers are put back by now: nothing writes to it any more

    def _sleep(self, stop_deadline: float | None) -> None:
        """Sleep until a signal (a stop, a child's exit) or the next deadline: the escalation of a stop,
        else the next restart."""
        if stop_deadline is not None:
            deadlines = [stop_deadline]
        else:
            deadlines = [child.restart_at for child in self.children if child.restart_at is not None]
        timeout = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
        if not self._hears_children:
            timeout = TICK if timeout is None else min(timeout, TICK)
        self._wake.wait(timeout)

    def _supervise(self) -> int:
        stop_deadline: float | None = None
        escalated = 0
        forwarded = 0
        while True:
            while forwarded < len(self._signals):
                signum = self._signals[forwarded]
                forwarded += 1
                if stop_deadline is None:
                    logger.info("got %s: stopping %d worker process(es) gracefully (up to %gs)",
                                signal.Signals(signum).name, len(self.children), self.shutdown_timeout)
                    stop_deadline = time.monotonic() + self.shutdown_timeout + GRACE
                else:
                    logger.warning("got %s again: forwarding it (workers hand running tasks back now)",
                                   signal.Signals(signum).name)
                self._send(signum)
            stopping = stop_deadline is not None
            for child in self.children:
                self._reap(child, stopping)
                if (not stopping and child.process is None and child.restart_at is not None
                        and time.monotonic() >= child.restart_at):
                    self._start(child)
            running = [c for c in self.children if c.process is not None]
            pending = [c for c in self.children if c.restart_at is not None and not stopping]
            if not running and not pending:
                return 0 if all(c.returncode == 0 for c in self.children) else 1
            if stop_deadline is not None and time.monotonic() >= stop_deadline:
                escalated += 1
                stop_deadline = time.monotonic() + GRACE
                if escalated == 1:
                    logger.warning("%d worker process(es) still running; asking them to stop now",
                                   len(running))
                    self._send(signal.SIGTERM)
                else:
                    logger.error("%d worker process(es) did not stop; killing them", len(running))
                    self._send(signal.SIGKILL)
            self._sleep(stop_deadline)


def serve_aggregated_metrics(app: Delayed, queues: Sequence[str], directory: str) -> None:
    """Let plugins that aggregate a multiprocess directory (the metrics plugin) serve it from here."""
    for plugin in app.plugin_manager.get_plugins():
        serve = getattr(plugin, "serve_aggregated", None)
        if callable(serve):
            serve(queues, directory)


def run_supervised(app: Delayed, command: Sequence[str], processes: int, burst: bool,
                   queues: Sequence[str]) -> int:
    """Run ``processes`` workers with ``command`` under a supervisor; the parent also serves metrics
    (counters summed over the children, gauges of ``queues``)."""
    supervisor = Supervisor(command, processes, app.config["shutdown_timeout"], burst)
    serve_aggregated_metrics(app, queues, supervisor.metrics_dir)
    logger.info("supervising %d worker processes", processes)
    return supervisor.run()


def child_command(parser: argparse.ArgumentParser, args: argparse.Namespace, leave_out: str) -> list[str]:
    """The command line of one child: this interpreter running ``delayed <command>`` with the flags
    ``args`` holds, except ``leave_out`` (a dest). Rebuilt from the parsed flags rather than copied from
    ``sys.argv``, so that it is right however the CLI was called (console script, ``main(argv)``)."""
    argv = [parser.prog.split()[-1]]
    for action in parser._actions:
        if not action.option_strings or action.dest in (leave_out, "help"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False or value == action.default:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:  # store_true / store_const
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return [sys.executable, "-m", "delayed_core.cli.main", *argv]
