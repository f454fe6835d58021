"""The fork server: a single-threaded process that forks one child per task and supervises it.

It runs in a process forked by :class:`~.fork.ForkExecutor` at worker start, so it is a copy of the
worker's memory (imported modules, registered functions, plugins) with exactly one thread. Per-task
children are forked from here, never from the multi-threaded worker, so no lock can be caught held by
another thread at fork time.

One loop multiplexes everything with a selector: a request on a slot channel forks a child; the child's
pidfd (Linux) becomes readable when it exits, and the server reaps it, reads the child's result from a
pipe and answers on the slot channel. Time limits are enforced here: SIGTERM at the deadline, SIGKILL
:data:`GRACE` seconds later, both to the child's process group (the task and what it started). When the
worker goes (every channel closes, even when it was SIGKILLed) the server kills its children's groups and
exits; a child whose server dies is killed by the kernel (see :mod:`.lifetime`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import msgpack

from delayed_core.interfaces import ExecutorContext

from .awaiting import LoopRunner
from .calling import call_task, crashed, timed_out
from .ipc import Channel, ChannelClosed, describe_exit, outcome_to_wire
from .lifetime import die_with_parent, kill_group

logger = logging.getLogger("delayed.executor.fork")

#: Seconds between SIGTERM and SIGKILL for a task past its limit.
GRACE = 0.5
#: How often exits are polled where pidfds do not exist (not Linux).
POLL_INTERVAL = 0.02
_HAS_PIDFD = hasattr(os, "pidfd_open")


@dataclass
class _Child:
    """One running task process."""

    pid: int
    result_fd: int
    exit_fd: int | None
    started: float
    timeout: float | None
    deadline: float | None
    kill_at: float | None = None
    timed_out: bool = False
    interrupted: bool = False


class ForkServer:
    """Serves run/interrupt requests from the worker's slots until every slot channel is closed."""

    def __init__(self, channels: list[Channel], context: ExecutorContext) -> None:
        self.channels = channels
        self.context = context
        self.children: dict[int, _Child] = {}
        self.selector = selectors.DefaultSelector()
        self.open_slots = set(range(len(channels)))

    def serve(self) -> None:
        """The loop; returns when the worker closed every channel (stop, or the worker died)."""
        for slot, channel in enumerate(self.channels):
            self.selector.register(channel.fileno(), selectors.EVENT_READ, ("request", slot))
        while self.open_slots or self.children:
            for key, _ in self.selector.select(self._wait_time()):
                kind, slot = key.data
                if kind == "request":
                    self._on_requests(slot)
                else:
                    self._on_exit(slot)
            if not _HAS_PIDFD:
                self._poll_exits()
            self._enforce_limits()

    # -- requests --------------------------------------------------------------------------------
    def _on_requests(self, slot: int) -> None:
        channel = self.channels[slot]
        try:
            messages = channel.drain()
        except ChannelClosed:
            # The worker stopped or died: nobody waits for this slot's task any more.
            self.selector.unregister(channel.fileno())
            self.open_slots.discard(slot)
            child = self.children.get(slot)
            if child is not None:
                child.interrupted = True
                self._signal(child, signal.SIGKILL)
            return
        for message in messages:
            if message.get("op") == "run":
                self._spawn(slot, message)
            elif message.get("op") == "interrupt" and slot in self.children:
                child = self.children[slot]
                child.interrupted = True
                self._terminate(child, time.monotonic())

    def _spawn(self, slot: int, request: dict[str, Any]) -> None:
        read_fd, write_fd = os.pipe()
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the task process
            try:
                # A process group of its own: at the time limit the group is killed, with what the task
                # started. Both sides set it, so that it holds whichever runs first.
                os.setpgid(0, 0)
                die_with_parent(server_pid)
                os.close(read_fd)
                self.selector.close()
                for other in self.channels:
                    other.close()
                for sibling in self.children.values():
                    os.close(sibling.result_fd)
                    if sibling.exit_fd is not None:
                        os.close(sibling.exit_fd)
                run_child(self.context, slot, request, write_fd)
            finally:
                os._exit(70)
        with contextlib.suppress(OSError):  # it may have set it, or even exited, already
            os.setpgid(pid, pid)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        timeout = request.get("timeout")
        now = time.monotonic()
        child = _Child(pid, read_fd, None, now, timeout, now + timeout if timeout else None)
        if _HAS_PIDFD:
            child.exit_fd = os.pidfd_open(pid)
            self.selector.register(child.exit_fd, selectors.EVENT_READ, ("exit", slot))
        self.children[slot] = child

    # -- exits and limits ------------------------------------------------------------------------
    def _on_exit(self, slot: int) -> None:
        """The child exited (its pidfd is readable) and is not reaped yet, so its group id is still ours."""
        child = self.children[slot]
        if child.timed_out or child.interrupted:
            kill_group(child.pid, signal.SIGKILL)  # what the task started and left behind
        self._reap(slot, os.waitpid(child.pid, 0)[1])

    def _reap(self, slot: int, wait_status: int) -> None:
        child = self.children.pop(slot)
        if child.exit_fd is not None:
            self.selector.unregister(child.exit_fd)
            os.close(child.exit_fd)
        duration = time.monotonic() - child.started
        report = _read_report(child.result_fd)
        os.close(child.result_fd)
        if child.timed_out:
            reply = outcome_to_wire(timed_out(child.timeout, duration, "fork"))
        elif child.interrupted:
            reply = outcome_to_wire(crashed("was interrupted at shutdown", duration, "fork"))
        elif report is not None and os.waitstatus_to_exitcode(wait_status) == 0:
            reply = report
        else:
            reply = outcome_to_wire(crashed(describe_exit(wait_status) + " before reporting", duration, "fork"))
        if slot in self.open_slots:
            try:
                self.channels[slot].send(reply)
            except OSError:
                self.open_slots.discard(slot)

    def _poll_exits(self) -> None:
        for slot, child in list(self.children.items()):
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                if child.timed_out or child.interrupted:
                    # Without pidfds the leader is reaped first; its group is killed right after.
                    kill_group(child.pid, signal.SIGKILL)
                self._reap(slot, status)

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.deadline is not None and now >= child.deadline and not child.timed_out:
                child.timed_out = True
                self._terminate(child, now)
            elif child.kill_at is not None and now >= child.kill_at:
                child.kill_at = None
                self._signal(child, signal.SIGKILL)

    def _terminate(self, child: _Child, now: float) -> None:
        """SIGTERM now, SIGKILL after the grace period if it is still there."""
        self._signal(child, signal.SIGTERM)
        child.kill_at = now + GRACE

    @staticmethod
    def _signal(child: _Child, signum: int) -> None:
        # The task process and everything it started. It is not reaped yet, so the group id is still its.
        kill_group(child.pid, signum)

    def _wait_time(self) -> float | None:
        moments = [m for c in self.children.values() for m in (c.deadline, c.kill_at) if m is not None]
        if not _HAS_PIDFD and self.children:
            moments.append(time.monotonic() + POLL_INTERVAL)
        return max(0.0, min(moments) - time.monotonic()) if moments else None


def _read_report(fd: int) -> dict[str, Any] | None:
    """The outcome the child wrote before exiting, or None when it wrote none (it crashed)."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            break  # a process the task started still holds the pipe open; what we have is all
        if not data:
            break
        chunks.append(data)
    try:
        report = msgpack.unpackb(b"".join(chunks), raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    return report if isinstance(report, dict) else None


def run_child(context: ExecutorContext, slot: int, request: dict[str, Any], result_fd: int) -> None:
    """Body of a task process: fire the child hook, resolve and run the function, write the outcome, exit.

    The function is resolved here, after the fork, never in the fork server: with ``allow_any_import``
    resolving may import a module, and an import can start threads, which the server must never have
    (it forks). Here it costs one dict lookup, on a copy of the worker's registry."""
    try:
        context.child_started("fork", slot)
    except Exception:
        logger.exception("a delayed_executor_child_started hook failed; running the task anyway")
    runner = LoopRunner()  # this process runs one task: its loop ends with it
    outcome = call_task(context.resolve, request["path"], request["args"], request["kwargs"],
                        run_awaitable=runner.run, executor="fork")
    data = memoryview(msgpack.packb(outcome_to_wire(outcome), use_bin_type=True))
    while data:
        data = data[os.write(result_fd, data):]
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # Skip atexit handlers and finalizers: they belong to the worker this process is a copy of.
    os._exit(0)


def server_main(channels: list[Channel], context: ExecutorContext) -> None:
    """Entry point in the freshly forked server process; never returns."""
    try:
        # Its own process group: a Ctrl-C in the terminal reaches the worker, which shuts down
        # gracefully, not the running tasks. The server dies with the worker through its channels.
        os.setpgrp()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)  # drop the worker's Python handlers copied by fork
        signal.signal(signal.SIGINT, signal.default_int_handler)
        ForkServer(channels, context).serve()
    except BaseException:
        logger.exception("the fork server failed")
    finally:
        os._exit(0)
