"""The fork executor: every task runs in a fresh child process, forked from a clean copy of the worker.

Why a fork server instead of ``os.fork()`` in the slot thread (as rq's work horse does in its
single-threaded worker): a pydelayed worker is multi-threaded (slots, keep-alive), and ``fork()`` copies
only the calling thread. Any lock another thread held at that instant (a logging handler, a connection
pool, an allocator in a C library) stays locked forever in the child, which can then hang. So
:meth:`ForkExecutor.start`, which the worker calls before it starts any thread, forks one
single-threaded *fork server* (:mod:`.fork_server`); per-task children are forked from it, where no other
thread exists. Each slot talks to the server over its own socket pair, so slots never wait on each other.

What this buys: a crash (segfault, ``os._exit``, OOM kill) ends only its task (``Status.CRASHED``); each
task starts from the same memory image, so leaks and global state do not accumulate; time limits are hard
(SIGTERM, then SIGKILL). What it costs: a fork per task (see docs/executors.md), and the child sees the
worker as it was at start (functions registered afterwards are unknown to it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask

from .calling import crashed
from .fork_server import server_main
from .ipc import Channel, ChannelClosed, channel_pair, outcome_from_wire, run_request

logger = logging.getLogger("delayed.executor.fork")

#: Seconds ``stop`` waits for the fork server to exit before killing it.
STOP_WAIT = 2.0


@dataclass
class _Server:
    """The worker's handle on one fork server process."""

    pid: int
    channels: list[Channel]

    @classmethod
    def spawn(cls, context: ExecutorContext) -> _Server:
        """Fork a server with one channel per slot."""
        pairs = [channel_pair() for _ in range(context.slots)]
        pid = os.fork()
        if pid == 0:
            for ours, _ in pairs:
                ours.close()
            server_main([theirs for _, theirs in pairs], context)
        for _, theirs in pairs:
            theirs.close()
        return cls(pid, [ours for ours, _ in pairs])

    def close(self) -> None:
        """Close the channels (the server then kills leftovers and exits) and reap it."""
        for channel in self.channels:
            channel.close()
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return
            time.sleep(0.01)
        logger.warning("the fork server did not exit within %gs; killing it", STOP_WAIT)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class ForkExecutor(Executor):
    """Runs each task in its own child process, forked by a fork server started with the worker."""

    name = "fork"

    def __init__(self) -> None:
        self._context: ExecutorContext | None = None
        self._server: _Server | None = None
        self._lock = threading.Lock()

    def start(self, context: ExecutorContext) -> None:
        """Fork the fork server (the worker has no other thread yet)."""
        self._context = context
        self._server = _Server.spawn(context)

    def execute(self, slot: int, task: PyTask, timeout: float | None) -> Outcome:
        """Ask the fork server to run the task in a new child (which resolves the function) and wait for
        its report."""
        server = self._server
        if server is None:
            raise RuntimeError("ForkExecutor.execute called before start")
        request = run_request(task)
        if isinstance(request, Outcome):
            return request  # its arguments cannot cross to the child
        request["timeout"] = timeout
        started = time.perf_counter()
        channel = server.channels[slot]
        try:
            channel.send(request)
            return outcome_from_wire(channel.receive())
        except (ChannelClosed, OSError):
            if self._context is not None:  # stop() was not called: the server itself died
                self._replace(server)
            return crashed("was lost: the fork server died", time.perf_counter() - started, "fork")

    def interrupt(self, slot: int) -> None:
        """Have the server kill the slot's child (SIGTERM, then SIGKILL)."""
        server = self._server
        if server is not None:
            with contextlib.suppress(OSError):
                server.channels[slot].send({"op": "interrupt"})

    def stop(self) -> None:
        """Stop the fork server; children still running are killed."""
        with self._lock:
            server, self._server, self._context = self._server, None, None
        if server is not None:
            server.close()

    def _replace(self, dead: _Server) -> None:
        """Start a new fork server after the old one died (once, whichever slot notices first)."""
        with self._lock:
            if self._server is not dead or self._context is None:
                return
            logger.error("the fork server (pid %d) died; starting a new one. It is forked from the running, "
                         "multi-threaded worker, which is less safe than at start-up.", dead.pid)
            dead.close()
            self._server = _Server.spawn(self._context)
