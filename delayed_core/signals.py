"""Stop signals: a process's handlers installed for the length of a run, the previous ones put back after.

Workers, the sweeper and the supervisor all stop gracefully on these signals, and all must leave the
handlers as they found them: an embedding program (a test, a web server starting a worker in-process)
keeps its own handlers once the run returns.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

#: Signals that stop a worker, or a supervisor, gracefully. Read by name: Windows has no SIGHUP, and
#: producers there must still be able to import the package.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))

Handler = Callable[[int, FrameType | None], object]


@contextlib.contextmanager
def handling(handler: Handler, signals: Iterable[int] = STOP_SIGNALS, install: bool = True) -> Iterator[None]:
    """Run the block with ``handler`` installed for ``signals``; restore the previous handlers after.

    Nothing is installed when ``install`` is false or outside the main thread (Python allows signal
    handlers only there: a worker run from another thread is stopped with ``stop()`` instead).
    """
    previous = {}
    if install and threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Wakeup:
    """A wake-up that a signal handler can send without taking a lock, for a main thread to sleep on.

    ``threading.Event.set()`` takes the event's lock; a handler runs in the main thread, between two of
    its bytecodes, so if the main thread was inside that event's ``wait()`` or ``clear()`` holding the
    lock, the handler would wait for it forever. :meth:`set` only writes a byte to a socket pair.
    """

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def set(self) -> None:
        """Wake the current or next :meth:`wait` (safe in a signal handler and from any thread)."""
        with contextlib.suppress(OSError):  # the pair's buffer is full: a wake-up is pending anyway
            self._write.send(b"\0")

    def wait(self, timeout: float | None) -> bool:
        """Sleep until a :meth:`set` since the last wait (True) or ``timeout`` seconds (False)."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while self._read.recv(4096):  # take every pending wake-up: they all ask for one look
                pass
        return bool(ready)

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Within the block, every signal that has a handler also wakes :meth:`wait`, whichever thread
        the OS delivers it to (``signal.set_wakeup_fd``). Without it, a signal delivered to another
        thread would wait for the main thread to run a bytecode, which a main thread asleep in
        :meth:`wait` does not. Only in the main thread (elsewhere, nothing is installed)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)

    def close(self) -> None:
        """Release the socket pair; call it once no handler can :meth:`set` any more."""
        self._read.close()
        self._write.close()
