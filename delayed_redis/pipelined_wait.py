"""The fast way to wait for a task's end on RESP3 connections: SUBSCRIBE and the read in one round trip.

RESP3 (redis-py's default, Redis 6+) lets a subscribed connection run ordinary commands, and one
connection's commands run in order. So a waiter sends ``SUBSCRIBE`` and the read script together on
its own connection: one round trip tells it the task has finished, or that it is subscribed and any
later end will be announced to it. The final read after the announcement goes over the same connection.
An idle worker's enqueue-to-result then costs the producer three round trips (enqueue, subscribe+read,
read) instead of five.

Replies and pushes share the connection. Pushes (``subscribe``, ``unsubscribe``, ``message``: three
elements, the first one of those words) are told from the read's reply by content: the record's field
names are ours and none of them is such a word. A thread keeps its connection between waits; the
left-overs of its earlier waits (an unsubscribe confirmation, a late announcement) are skipped.

A connection that does not speak RESP3 (``protocol=2`` in the URL), or a server that still refuses
commands on a subscribed connection (fakeredis), makes the thread fall back to
:class:`~delayed_redis.waiting.RecordWaiter` for good.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from delayed_core.interfaces.tracking import TaskRecord

from .connection import unavailable_as_broker_error
from .record_calls import RecordCalls
from .scripts import Script
from .waiting import RecordWaiter, SubscriptionLost, at_thread_exit, settled

PUSHES = (b"subscribe", b"unsubscribe", b"message", b"ssubscribe", b"sunsubscribe", b"smessage")


def is_push(reply: Any) -> bool:
    """True for a pub/sub push, False for a command's reply (see the module docstring)."""
    return isinstance(reply, list) and len(reply) == 3 and reply[0] in PUSHES


class PipelinedWaiter:
    """Waits on task records with one RESP3 connection per waiting thread.

    :param client: the broker's client (connections come from its pool).
    :param script: the read script; :param parse: its reply as a record.
    :param fallback: the pub/sub waiter, for connections without RESP3 and for a refused SUBSCRIBE.
    :param calls: the key layout's record names and pub/sub kind (go-delayed's by default).
    """

    def __init__(self, client: redis.Redis, script: Script, parse: Callable[[str, list[bytes]], TaskRecord],
                 fallback: RecordWaiter, calls: RecordCalls | None = None) -> None:
        self.client = client
        self.script = script
        self.parse = parse
        self.fallback = fallback
        self.calls = calls or RecordCalls()
        self._local = threading.local()

    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """The record once the task has finished, or as it is at the deadline; never polls."""
        if timeout <= 0:
            return self.fallback.read(task_id)
        key = self.calls.key(task_id)
        conn = self._connection(key)
        if conn is None:
            return self.fallback.wait(task_id, timeout)
        deadline = time.monotonic() + timeout
        read = self.script.command(*self.calls.read(task_id))
        kind = self.calls.pubsub
        with unavailable_as_broker_error():
            try:
                conn.send_packed_command(conn.pack_commands([(kind.subscribe.upper(), key), read]))
                try:
                    self._push(conn, kind.confirmed.encode(), key, None)
                except redis.exceptions.ResponseError as exc:  # refused: an ACL without pub/sub rights
                    self._drop()  # its read's reply is still on the way: not worth reading out
                    if isinstance(exc, redis.exceptions.AskError):  # MOVED too: a cluster slot moved
                        raise
                    return self.fallback.wait_polling(task_id, deadline, exc)
                try:
                    record = self._record(conn, task_id)
                except redis.exceptions.ResponseError as exc:
                    if "allowed in this context" not in str(exc):
                        raise
                    # a server (or fake) that serves no command to a subscribed connection
                    self._drop()
                    self._local.unsupported = True
                    return self.fallback.wait(task_id, max(0.0, deadline - time.monotonic()))
                while not settled(record):
                    announced = self._push(conn, kind.message.encode(), key, deadline, lost=kind.unsubscribe.encode())
                    # after an announcement (a retry announces too: keep waiting then), or once more at the
                    # deadline, in case the end was not announced to this waiter (see waiting.py)
                    conn.send_command(*read)
                    record = self._record(conn, task_id)
                    if not announced:
                        break
                conn.send_command(kind.unsubscribe.upper(), key)  # its confirmation is skipped by the next wait
            except BaseException:
                self._drop()  # in an unknown state (an error, or an interrupt mid-read): start afresh
                raise
        return record

    def _connection(self, key: str) -> Any:
        """This thread's connection; None when it does not speak RESP3 (checked once per thread)."""
        if getattr(self._local, "unsupported", False):
            return None
        conn = getattr(self._local, "conn", None)
        if conn is None:
            pool = self._pool(key)
            conn = pool.get_connection()
            if str(getattr(conn, "protocol", "")) != "3" or not hasattr(conn, "pack_commands"):
                pool.release(conn)
                self._local.unsupported = True
                return None
            self._local.conn, self._local.pool = conn, pool
            self._local.release = at_thread_exit(lambda: _close(pool, conn))
        return conn

    def _pool(self, key: str) -> Any:
        """The connection pool of the server holding ``key``: the client's own (one Redis)."""
        return self.client.connection_pool

    def _push(self, conn: Any, kind: bytes, key: str, deadline: float | None, lost: bytes = b"") -> bool:
        """Read until the push ``kind`` for ``key`` (False at ``deadline``; None: the reply is due now).
        A push ``lost`` for ``key`` (an unsubscribe the waiter did not ask for: an earlier wait's comes
        before this wait's subscribe confirmation) raises :class:`SubscriptionLost`."""
        wanted = key.encode()
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not conn.can_read(timeout=remaining):
                    return False
            reply = conn.read_response(push_request=True)
            if is_push(reply) and reply[1] == wanted:
                if reply[0] == kind:
                    return True
                if reply[0] == lost:
                    raise SubscriptionLost(f"the server ended the subscription to {key} (its slot moved?)")

    def _record(self, conn: Any, task_id: str) -> TaskRecord:
        """The read's reply, skipping pushes (an announcement may come first); a server that lost the
        script (restarted, flushed) is read once through the client, which loads it again."""
        while True:
            try:
                reply = conn.read_response(push_request=True)
            except redis.exceptions.NoScriptError:
                return self.fallback.read(task_id)
            if not is_push(reply):
                return self.parse(task_id, reply)

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self._local.release.detach()
            _close(self._local.pool, conn)


def _close(pool: Any, conn: Any) -> None:
    """Disconnect ``conn`` (its subscriptions go with it) and give it back to ``pool``."""
    conn.disconnect()
    pool.release(conn)
