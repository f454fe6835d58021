"""Task records from asyncio code: the tracked enqueue, the read and the wait on redis.asyncio.

Used by :class:`~delayed_redis.tracking.RedisTracker`'s ``*_async`` methods (``AsyncQueue`` tracked
enqueues, ``handle.result_async()``). asyncio clients belong to one event loop, so there is one client
per loop, made on first use and dropped with the loop. A waiter sends the same few commands as a
blocking one (read, SUBSCRIBE, read) and then sleeps on the channel inside the event loop: no thread,
no polling.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio

from delayed_core.interfaces.tracking import Submission, TaskRecord

from .connection import async_client_from_url, unavailable_as_broker_error
from .record_calls import RecordCalls
from .replicas import ReplicaWait
from .tracking import READ, record_from, submit_answers, submit_call
from .waiting import POLL_INTERVAL, SubscriptionLost, settled

logger = logging.getLogger("delayed.worker")


class AsyncRecords:
    """The records of one Redis database, reached from any event loop.

    :param url: the broker URL (each loop's client is made from it).
    :param replica_wait: the broker's ``wait_replicas``: WAIT pipelined behind each submit when on.
    :param calls: the key layout's record names and pub/sub kind (go-delayed's by default).
    :param parse: ``track_read``'s reply as a record.
    """

    def __init__(self, url: str, replica_wait: ReplicaWait | None = None, calls: RecordCalls | None = None,
                 parse: Callable[[str, list[bytes]], TaskRecord] = record_from) -> None:
        self.url = url
        self.replica_wait = replica_wait or ReplicaWait()
        self.calls = calls or RecordCalls()
        self.parse = parse
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = \
            weakref.WeakKeyDictionary()
        self._warned = False

    def client(self) -> redis.asyncio.Redis:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = async_client_from_url(self.url)
        return client

    async def submit_many(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """One script call for the batch (see ``track_submit.lua``)."""
        script, keys, args = submit_call(submissions, self.calls.layout)
        with unavailable_as_broker_error():
            if self.replica_wait:
                reply = await self.replica_wait.script_async(self.client(), script, keys, args)
            else:
                reply = await script.call_async(self.client(), keys, args)
            return submit_answers(submissions, reply)

    async def read(self, task_id: str) -> TaskRecord:
        """One script call."""
        with unavailable_as_broker_error():
            return self.parse(task_id, await READ.call_async(self.client(), *self.calls.read(task_id)))

    async def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """As :meth:`RecordWaiter.wait <delayed_redis.waiting.RecordWaiter.wait>`: read; if not finished,
        SUBSCRIBE, read again once Redis confirmed, then await the channel until an announcement or the
        deadline, and read once more then. A subscriber connection per wait: waiters on one loop run at
        once, so they cannot share one the way a thread's successive waits do."""
        record = await self.read(task_id)
        if settled(record) or timeout <= 0:
            return record
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channel = self.calls.key(task_id)
        kind = self.calls.pubsub
        lost = False
        with unavailable_as_broker_error():
            pubsub = self.client().pubsub()
            # a cluster's pub/sub reads shard channels with its own method; one Redis's with get_message
            reader = getattr(pubsub, kind.reader, pubsub.get_message)
            try:
                await getattr(pubsub, kind.subscribe)(channel)
                confirmed = await _next(reader, kind.confirmed, channel, deadline)
                record = await self.read(task_id)  # after the confirmation, or at the deadline if none came
                while confirmed and not settled(record):
                    announced = await _next(reader, kind.message, channel, deadline, lost=kind.unsubscribe)
                    # after an announcement (a retry announces too: keep waiting then), or once more at the
                    # deadline, in case the end was not announced to this waiter (see waiting.py)
                    record = await self.read(task_id)
                    if not announced:
                        break
            except redis.exceptions.ResponseError as exc:
                return await self._wait_polling(task_id, deadline, exc)
            except SubscriptionLost:  # a cluster slot moved: the next read finds (and maps) its new node
                lost = True
            finally:
                await pubsub.aclose()
        if lost:
            return await self.wait(task_id, max(0.0, deadline - loop.time()))
        return record

    async def _wait_polling(self, task_id: str, deadline: float, exc: Exception) -> TaskRecord:
        """SUBSCRIBE refused (an ACL without pub/sub rights): read twice a second instead, said once."""
        if not self._warned:
            self._warned = True
            logger.warning("cannot subscribe to %s (%s); result_async() reads the record twice a second instead",
                           self.calls.key(task_id), " ".join(str(exc).split()))
        loop = asyncio.get_running_loop()
        record = await self.read(task_id)
        while not settled(record) and loop.time() < deadline:
            await asyncio.sleep(max(0.0, min(POLL_INTERVAL, deadline - loop.time())))
            record = await self.read(task_id)
        return record


async def _next(reader: Any, kind: str, channel: str, deadline: float, lost: str = "") -> bool:
    """Skip messages (``reader``: the pub/sub's method reading them) until one of ``kind`` on ``channel``;
    False at the deadline (loop time); :class:`SubscriptionLost` for a message ``lost`` on it."""
    loop = asyncio.get_running_loop()
    wanted = channel.encode()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        message = await reader(timeout=remaining)
        if message is not None and message["channel"] == wanted:
            if message["type"] == kind:
                return True
            if message["type"] == lost:
                raise SubscriptionLost(f"the server ended the subscription to {channel} (its slot moved?)")
