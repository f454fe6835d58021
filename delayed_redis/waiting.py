"""Waiting for a tracked task to finish, from plain (blocking) code: ``handle.result()``.

A waiter reads the record (one round trip when the task has finished already); otherwise it SUBSCRIBEs
to the record's channel, waits for Redis to confirm, reads again (the task may have finished before the
subscription took effect: only a read processed after the confirmation is sure to be followed by any
later announcement), then sleeps on the channel until the call that finishes the task publishes. Every
waiter on a task gets the announcement (pub/sub, unlike a list pop). At the deadline it reads once more:
an end it was not told of (a connection that dropped the message, an ACL that refused the worker's
PUBLISH) then costs the waiter its timeout, not the answer, and a ``TimeoutError`` names the status
just read rather than the one read before the wait.

Each thread keeps its subscriber connection between waits (UNSUBSCRIBE, not disconnect): a new
connection per ``result()`` would cost a TCP handshake and a HELLO, most of an idle worker's
enqueue-to-result time. A thread that waited once thus holds one idle connection.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis

from delayed_core.interfaces import tracking as st
from delayed_core.interfaces.tracking import TaskRecord

from .connection import unavailable_as_broker_error
from .record_calls import RecordCalls

logger = logging.getLogger("delayed.worker")

#: seconds between two reads of a waiter that may not subscribe (a restrictive ACL)
POLL_INTERVAL = 0.5


class SubscriptionLost(redis.exceptions.ConnectionError):
    """The server ended a waiter's subscription: a Redis Cluster node drops the shard channels of a hash
    slot that moves away (the caller waits again on the slot's new node)."""


def at_thread_exit(release: Callable[[], object]) -> weakref.finalize:
    """Call ``release`` once the calling thread has ended (and is collected): a connection a thread kept
    goes back to the pool then, instead of staying counted as in use for the process's lifetime."""
    return weakref.finalize(threading.current_thread(), release)


def settled(record: TaskRecord) -> bool:
    """True when waiting longer cannot change the answer (finished, or unknown)."""
    return record.done or record.status == st.UNKNOWN


class RecordWaiter:
    """Waits on task records' channels; one subscriber connection per waiting thread.

    :param client: the broker's client (subscriber connections come from its pool).
    :param read: reads one record (one round trip).
    :param calls: the key layout's record names and pub/sub kind (go-delayed's by default).
    """

    def __init__(self, client: redis.Redis, read: Callable[[str], TaskRecord],
                 calls: RecordCalls | None = None) -> None:
        self.client = client
        self.read = read
        self.calls = calls or RecordCalls()
        self._local = threading.local()
        self._warned = False

    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """The record once the task has finished, or as it is at the deadline; never polls."""
        record = self.read(task_id)
        if settled(record) or timeout <= 0:
            return record
        deadline = time.monotonic() + timeout
        channel = self.calls.key(task_id)
        kind = self.calls.pubsub
        with unavailable_as_broker_error():
            pubsub = self._subscribed(channel)
            try:
                try:
                    confirmed = self._next(pubsub, kind.confirmed, channel, deadline)
                except redis.exceptions.ResponseError as exc:  # a refused SUBSCRIBE answers with its error
                    self._drop()
                    if isinstance(exc, redis.exceptions.AskError):  # MOVED too: a cluster slot moved
                        raise
                    return self.wait_polling(task_id, deadline, exc)
                record = self.read(task_id)  # after the confirmation, or at the deadline if none came
                while confirmed and not settled(record):
                    announced = self._next(pubsub, kind.message, channel, deadline, lost=kind.unsubscribe)
                    # after an announcement (a retry announces too: keep waiting then), or once more at the
                    # deadline, in case the end was not announced to this waiter
                    record = self.read(task_id)
                    if not announced:
                        break
                getattr(pubsub, kind.unsubscribe)(channel)  # its confirmation is skipped by the next wait
            except BaseException:
                self._drop()  # in an unknown state (an error, or an interrupt mid-read): start afresh
                raise
        return record

    def _subscribed(self, channel: str) -> Any:
        """This thread's subscriber, subscribed to ``channel`` (one fresh try if the kept connection
        went stale: the server restarted, or dropped it as idle)."""
        subscribe = self.calls.pubsub.subscribe
        pubsub = getattr(self._local, "pubsub", None)
        if pubsub is not None:
            try:
                getattr(pubsub, subscribe)(channel)
                return pubsub
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self._drop()
        pubsub = self._local.pubsub = self.client.pubsub()
        self._local.release = at_thread_exit(pubsub.close)
        try:
            getattr(pubsub, subscribe)(channel)
        except BaseException:
            self._drop()
            raise
        return pubsub

    def _next(self, pubsub: Any, kind: str, channel: str, deadline: float, lost: str = "") -> bool:
        """Skip messages until one of ``kind`` on ``channel`` (False at the deadline). Left-overs of the
        thread's earlier waits (their unsubscribe confirmations, a late announcement) are skipped; they come
        before this wait's subscribe confirmation, so a message ``lost`` for ``channel`` after it (an
        unsubscribe not asked for) raises :class:`SubscriptionLost`."""
        wanted = channel.encode()
        reader = getattr(pubsub, self.calls.pubsub.reader)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            message = reader(timeout=remaining)
            if message is not None and message["channel"] == wanted:
                if message["type"] == kind:
                    return True
                if message["type"] == lost:
                    raise SubscriptionLost(f"the server ended the subscription to {channel} (its slot moved?)")

    def _drop(self) -> None:
        pubsub = getattr(self._local, "pubsub", None)
        self._local.pubsub = None
        if pubsub is not None:
            self._local.release.detach()
            try:
                pubsub.close()
            except redis.exceptions.RedisError as exc:  # closing a broken connection: nothing to keep
                logger.debug("closing a subscriber connection failed (%s)", exc)

    def wait_polling(self, task_id: str, deadline: float, exc: Exception) -> TaskRecord:
        """SUBSCRIBE refused (an ACL without pub/sub rights): read twice a second instead, said once."""
        if not self._warned:
            self._warned = True
            logger.warning("cannot subscribe to %s (%s); result() reads the record twice a second instead",
                           self.calls.key(task_id), " ".join(str(exc).split()))
        record = self.read(task_id)
        while not settled(record) and time.monotonic() < deadline:
            time.sleep(max(0.0, min(POLL_INTERVAL, deadline - time.monotonic())))
            record = self.read(task_id)
        return record
