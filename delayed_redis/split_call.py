"""SplitCaller: a command sent now and its reply read later, on a connection of the calling thread.

A prefetching slot sends its next batch call, runs the tasks it holds while Redis runs the script, and
only then reads the reply (delayed_redis/batches.py). The reply stays unread on the socket meanwhile, so
the connection must be one no other command of the thread uses: a SplitCaller keeps its own connection
per thread, apart from the broker's :class:`~delayed_redis.direct.DirectCaller` (whose connection the
same thread uses for its other commands while the reply waits).
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis

from .direct import DirectCaller


class SplitCaller(DirectCaller):
    """A :class:`DirectCaller` (still callable for a whole command) whose command can be sent by
    :meth:`send` and its reply read by :meth:`receive`: one reply at most waits per thread."""

    def send(self, *args: Any) -> None:
        """Send one command on the calling thread's connection; its reply waits for :meth:`receive`."""
        local = self._local
        if getattr(local, "waiting", False):
            # A bug in the caller: a second reply would be read in place of the first.
            raise RuntimeError("a reply is still unread on this thread's connection")
        connection = getattr(local, "connection", None) or self._connect()
        try:
            packed = None
            if self._packs:
                try:
                    packed = hiredis.pack_command(args)
                except TypeError:  # an argument type only redis-py converts
                    packed = None
            if packed is None:
                connection.send_command(*args)
            else:
                connection.send_packed_command((packed,))
        except BaseException:
            self.close()  # bytes may have gone out half: start afresh, as DirectCaller does
            raise
        local.waiting = True

    def receive(self) -> Any:
        """The reply of the command :meth:`send` sent on this thread (an error reply raises, as a call
        would)."""
        local = self._local
        local.waiting = False
        connection = getattr(local, "connection", None)
        if connection is None:
            raise RuntimeError("no command was sent on this thread's connection")
        try:
            return connection.read_response()
        except redis.exceptions.ResponseError:
            raise  # an error reply: the connection is still in a clean state
        except BaseException:
            self.close()  # a timeout or a broken socket: unread bytes may follow
            raise
