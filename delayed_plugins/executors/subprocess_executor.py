"""The subprocess executor: one long-lived child interpreter per slot, fed tasks over a socket.

Unlike ``fork``, a child is a fresh ``python -m delayed_plugins.executors.subprocess_child``: nothing is
inherited from the worker but the environment, the import path and what ``child_setup`` describes (the
child rebuilds the worker's app from it: :mod:`delayed_core.child_app`), so it
is safe to start at any time from the multi-threaded worker (spawn, not fork) and works wherever Python
does. The child is reused for many tasks (no per-task start cost) and replaced when:

- it crashes (segfault, ``os._exit``, OOM kill): that task is reported ``CRASHED``;
- its task runs past the time limit: SIGTERM, SIGKILL after :data:`GRACE` seconds, ``TIMEOUT`` (to the
  child's whole process group, so programs the task started go too);
- it ran ``max_tasks_per_child`` tasks, or its RSS is above ``max_memory_per_child`` MiB after a task.

A replacement is started lazily, when the slot's next task arrives. A child dies with its worker, even a
SIGKILLed one (see :mod:`.lifetime`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask

from .calling import crashed, timed_out
from .ipc import Channel, ChannelClosed, channel_pair, describe_exit_code, outcome_from_wire, run_request
from .lifetime import CAN_WAIT_UNREAPED, GOODBYE, exited_unreaped, kill_group
from .recycling import MAX_MEMORY_PER_CHILD, MAX_TASKS_PER_CHILD

logger = logging.getLogger("delayed.executor.subprocess")

CHILD_MODULE = "delayed_plugins.executors.subprocess_child"
#: Seconds between SIGTERM and SIGKILL when a child must go.
GRACE = 0.5
#: Seconds a new child may take to import its modules and say it is ready.
STARTUP_TIMEOUT = 60.0


class ChildStartError(Exception):
    """A child interpreter could not set itself up."""


@dataclass
class _Child:
    """The worker's handle on one child interpreter (the leader of its own session and process group)."""

    process: subprocess.Popen[bytes]
    channel: Channel
    lifeline: int
    tasks: int = 0
    interrupted: bool = field(default=False)

    @classmethod
    def spawn(cls, context: ExecutorContext, slot: int, launch: Callable[..., subprocess.Popen[bytes]]) -> _Child:
        """Start a child for ``slot`` through ``launch`` and wait until it is ready."""
        ours, theirs = channel_pair()
        fd = theirs.fileno()
        lifeline_read, lifeline = os.pipe()
        try:
            # start_new_session: a Ctrl-C in the terminal reaches the worker (graceful stop), not tasks, and
            # the child leads a process group that holds whatever its tasks start.
            process = launch([sys.executable, "-m", CHILD_MODULE, str(fd), str(lifeline_read), str(os.getpid())],
                             pass_fds=[fd, lifeline_read], stdin=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            os.close(lifeline)
            raise
        finally:
            theirs.close()
            os.close(lifeline_read)
        child = cls(process, ours, lifeline)
        try:
            ours.send({"slot": slot, "sys_path": list(sys.path), "setup": context.child_setup.to_message()})
            answer = ours.receive(STARTUP_TIMEOUT)
        except (ChannelClosed, OSError, TimeoutError):
            child.kill()
            raise ChildStartError(f"the child interpreter {describe_exit_code(process.returncode or 0)} "
                                  "before it was ready") from None
        if "error" in answer:
            child.kill()
            raise ChildStartError(f"the child interpreter could not set up: {answer['error']}")
        return child

    def kill(self) -> int:
        """SIGTERM the child's process group, SIGKILL it after the grace period; returns the exit code."""
        self.channel.close()
        pid = self.process.pid
        if self.process.returncode is None:
            kill_group(pid, signal.SIGTERM)
            if CAN_WAIT_UNREAPED:
                deadline = time.monotonic() + GRACE
                while not exited_unreaped(pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
            else:  # the child is reaped first here; its group is killed just after
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(GRACE)
            kill_group(pid, signal.SIGKILL)  # the child if it lingers, and what its task started
        code = self.process.wait()
        self._cut_lifeline()
        return code

    def retire(self) -> None:
        """Let it exit on its own (it does when its channel closes); kill it if it lingers."""
        with contextlib.suppress(OSError):
            os.write(self.lifeline, GOODBYE)  # a normal goodbye: the child's guard stands down
        self.channel.close()
        try:
            self.process.wait(GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
        self._cut_lifeline()

    def _cut_lifeline(self) -> None:
        if self.lifeline >= 0:
            os.close(self.lifeline)
            self.lifeline = -1


def _kill_group_if_unreaped(process: subprocess.Popen[bytes]) -> None:
    if process.returncode is None:
        kill_group(process.pid, signal.SIGKILL)


class SubprocessExecutor(Executor):
    """Runs tasks in one long-lived child interpreter per slot."""

    name = "subprocess"

    def __init__(self) -> None:
        self._context: ExecutorContext | None = None
        self._children: list[_Child | None] = []
        # Children are started by this one long-lived thread: the kernel's parent-death signal fires when
        # the thread that started a child ends, and slot threads may come and go.
        self._launcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="delayed-launcher")

    def _launch(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, **options)

        return self._launcher.submit(popen).result()

    def start(self, context: ExecutorContext) -> None:
        """Remember the setup; children start when their slot gets its first task."""
        self._context = context
        self._children = [None] * context.slots

    def execute(self, slot: int, task: PyTask, timeout: float | None) -> Outcome:
        """Send the task to the slot's child (which resolves the function) and wait for the report, at most
        ``timeout`` seconds."""
        if self._context is None:
            raise RuntimeError("SubprocessExecutor.execute called before start")
        request = run_request(task)
        if isinstance(request, Outcome):
            return request  # its arguments cannot cross to the child
        started = time.perf_counter()
        child = self._children[slot]
        if child is not None and child.process.poll() is not None:
            child.kill()  # it died between tasks: clean up after it (its guard, what its tasks left)
            child = None
        if child is None:
            try:
                child = self._children[slot] = _Child.spawn(self._context, slot, self._launch)
            except ChildStartError as exc:
                return crashed(f"could not start: {exc}", time.perf_counter() - started, "subprocess")
        try:
            child.channel.send(request)
            reply = child.channel.receive(timeout)
        except TimeoutError:
            self._children[slot] = None
            child.kill()
            return timed_out(timeout, time.perf_counter() - started, "subprocess")
        except (ChannelClosed, OSError):
            self._children[slot] = None
            how = "was interrupted at shutdown" if child.interrupted else describe_exit_code(child.kill())
            return crashed(how, time.perf_counter() - started, "subprocess")
        child.tasks += 1
        self._recycle_if_due(slot, child, float(reply.get("rss_mib", 0.0)))
        return outcome_from_wire(reply)

    def _recycle_if_due(self, slot: int, child: _Child, rss_mib: float) -> None:
        if self._context is None:
            return
        max_tasks = self._context.config.get(MAX_TASKS_PER_CHILD)
        max_mib = self._context.config.get(MAX_MEMORY_PER_CHILD)
        if max_tasks and child.tasks >= max_tasks:
            reason = f"it ran {child.tasks} tasks (max_tasks_per_child)"
        elif max_mib and rss_mib > max_mib:
            reason = f"it uses {rss_mib:.0f} MiB (max_memory_per_child {max_mib})"
        else:
            return
        logger.info("slot %d: replacing child %d: %s", slot, child.process.pid, reason)
        self._children[slot] = None
        child.retire()

    def interrupt(self, slot: int) -> None:
        """Kill the slot's child; its task is reported crashed and the child replaced."""
        child = self._children[slot] if slot < len(self._children) else None
        if child is not None:
            child.interrupted = True
            kill_group(child.process.pid, signal.SIGTERM)
            # Called from the worker's main thread at the shutdown timeout: do not block it for the grace.
            threading.Timer(GRACE, _kill_group_if_unreaped, (child.process,)).start()

    def stop(self) -> None:
        """Close every child (each exits when its channel closes)."""
        children, self._children = self._children, [None] * len(self._children)
        for child in children:
            if child is not None:
                child.retire()
        self._launcher.shutdown(wait=False)
