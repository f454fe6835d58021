"""A pub/sub wait that another thread can end at once: how a worker's keep-alive and cancel threads wait.

A stopping worker joins those threads, and each of them sits in ``get_message(timeout=...)``, a socket
read that only data or the timeout ends. Closing the connection from the stopping thread would end the
read, but it races the reader (a read on a socket closed under it raises whatever the parser meets,
not always a redis-py error) and redis-py then reconnects before it raises. Instead the waiting thread
polls two descriptors: the subscription's socket and one end of a socket pair, and :meth:`Waker.wake`
writes a byte to the other end. Messages are still read with ``get_message(timeout=0)``, so redis-py
keeps parsing and buffering.

A connection without an OS socket (fakeredis) has nothing to poll: its wait goes in slices of
:data:`SLICE` seconds and checks for a wake between them.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

#: longest single read of a wait that cannot poll its socket (fakeredis): how late a wake may be seen
SLICE = 0.02


class Waker:
    """Ends the waits of one watcher from any other thread. A wake sticks: every later wait returns at
    once too, since a watcher is woken only when its thread is about to close it."""

    def __init__(self) -> None:
        self.woken = False
        self._lock = threading.Lock()
        self._pair: tuple[socket.socket, socket.socket] | None = None

    def fileno(self) -> int:
        """The descriptor that turns readable on a wake (the socket pair is made on first use)."""
        with self._lock:
            if self._pair is None:
                self._pair = socket.socketpair()
                for end in self._pair:
                    end.setblocking(False)
                if self.woken:  # woken before anyone waited: the pair must read as woken too
                    self._pair[1].send(b"w")
            return self._pair[0].fileno()

    def wake(self) -> None:
        """End the wait in progress, if any, and every later one. Safe from any thread, at any time."""
        with self._lock:
            self.woken = True
            if self._pair is not None:
                with contextlib.suppress(OSError):  # the pair's buffer is full: it reads as woken already
                    self._pair[1].send(b"w")

    def close(self) -> None:
        """Release the socket pair (a wake after this only sets the flag)."""
        with self._lock:
            pair, self._pair = self._pair, None
        for end in pair or ():
            end.close()


def next_message(pubsub: Any, timeout: float, waker: Waker) -> dict[str, Any] | None:
    """``pubsub.get_message(timeout=timeout)`` that :meth:`Waker.wake` ends at once (it returns None).
    Errors of the connection are raised as ``get_message`` raises them."""
    deadline = time.monotonic() + max(0.0, timeout)
    while not waker.woken:
        message = pubsub.get_message(timeout=0)
        if message is not None:
            return message
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        connection = pubsub.connection
        sock = getattr(connection, "_sock", None)
        if not isinstance(sock, socket.socket) or not pubsub.subscribed:
            # No OS socket to poll (fakeredis), or nothing subscribed yet: short plain reads.
            message = pubsub.get_message(timeout=min(remaining, SLICE))
            if message is not None:
                return message
            continue
        if connection.can_read(timeout=0):
            continue  # a reply buffered or arrived already (an ignored confirmation may precede a message)
        _wait_readable(sock, waker.fileno(), remaining)
    return None


def _wait_readable(sock: socket.socket, wake_fd: int, timeout: float) -> None:
    """Block until ``sock`` or ``wake_fd`` is readable (or closed), or ``timeout`` passes."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        poller.poll(timeout * 1000)
    else:  # pragma: no cover - Windows has no poll(); its select() takes sockets of any number
        select.select([sock.fileno(), wake_fd], [], [], timeout)
