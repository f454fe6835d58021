"""SplitCaller: a command sent now and its reply read later, on a connection of the calling thread.

A prefetching slot sends its next batch call, runs the tasks it holds while Redis runs the script, and
only then reads the reply (delayed_redis/batches.py). The reply stays unread on the socket meanwhile, so
the connection must be one no other command of the thread uses: a SplitCaller keeps its own connection
per thread, apart from the broker's :class:`~delayed_redis.direct.DirectCaller` (whose connection the
same thread uses for its other commands while the reply waits).
"""

from __future__ import annotations

from typing import Any

from .direct import DirectCaller


class SplitCaller(DirectCaller):
    """A :class:`DirectCaller` (still callable for a whole command) whose command can be sent by
    :meth:`send` and its reply read by :meth:`receive`: one reply at most waits per thread."""

    def send(self, *args: Any) -> None:
        """Send one command on the calling thread's connection; its reply waits for :meth:`receive`."""
        if getattr(self._local, "waiting", None) is not None:
            # A bug in the caller: a second reply would be read in place of the first.
            raise RuntimeError("a reply is still unread on this thread's connection")
        self._local.waiting = self._write(args, None)

    def receive(self) -> Any:
        """The reply of the command :meth:`send` sent on this thread (an error reply raises, as a call
        would)."""
        connection, self._local.waiting = getattr(self._local, "waiting", None), None
        if connection is None:
            raise RuntimeError("no command was sent on this thread's connection")
        return self._read(connection)
