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
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio

from delayed_core.interfaces.tracking import Submission, TaskRecord

from .connection import async_client_from_url, unavailable_as_broker_error
from .keys import record_key
from .replicas import ReplicaWait
from .tracking import READ, record_from, submit_answers, submit_call
from .waiting import POLL_INTERVAL, settled

logger = logging.getLogger("delayed.worker")


class AsyncRecords:
    """The records of one Redis database, reached from any event loop.

    :param url: the broker URL (each loop's client is made from it).
    :param replica_wait: the broker's ``wait_replicas``: WAIT pipelined behind each submit when on.
    """

    def __init__(self, url: str, replica_wait: ReplicaWait | None = None) -> None:
        self.url = url
        self.replica_wait = replica_wait or ReplicaWait()
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
        script, keys, args = submit_call(submissions)
        with unavailable_as_broker_error():
            if self.replica_wait:
                reply = await self.replica_wait.script_async(self.client(), script, keys, args)
            else:
                reply = await script.call_async(self.client(), keys, args)
            return submit_answers(submissions, reply)

    async def read(self, task_id: str) -> TaskRecord:
        """One script call."""
        with unavailable_as_broker_error():
            return record_from(task_id, await READ.call_async(self.client(), (record_key(task_id),), ()))

    async def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """As :meth:`RecordWaiter.wait <delayed_redis.waiting.RecordWaiter.wait>`: read; if not finished,
        SUBSCRIBE, read again once Redis confirmed, then await the channel until an announcement or the
        deadline. A subscriber connection per wait: waiters on one loop run at once, so they cannot share
        one the way a thread's successive waits do."""
        record = await self.read(task_id)
        if settled(record) or timeout <= 0:
            return record
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channel = record_key(task_id)
        with unavailable_as_broker_error():
            pubsub = self.client().pubsub()
            try:
                await pubsub.subscribe(channel)
                if await _next(pubsub, "subscribe", channel, deadline):
                    record = await self.read(task_id)
                    while not settled(record) and await _next(pubsub, "message", channel, deadline):
                        record = await self.read(task_id)  # a retry announces too: keep waiting then
            except redis.exceptions.ResponseError as exc:
                return await self._wait_polling(task_id, deadline, exc)
            finally:
                await pubsub.aclose()
        return record

    async def _wait_polling(self, task_id: str, deadline: float, exc: Exception) -> TaskRecord:
        """SUBSCRIBE refused (an ACL without pub/sub rights): read twice a second instead, said once."""
        if not self._warned:
            self._warned = True
            logger.warning("cannot subscribe to %s (%s); result_async() reads the record twice a second instead",
                           record_key(task_id), " ".join(str(exc).split()))
        loop = asyncio.get_running_loop()
        record = await self.read(task_id)
        while not settled(record) and loop.time() < deadline:
            await asyncio.sleep(max(0.0, min(POLL_INTERVAL, deadline - loop.time())))
            record = await self.read(task_id)
        return record


async def _next(pubsub: Any, kind: str, channel: str, deadline: float) -> bool:
    """Skip messages until one of ``kind`` on ``channel``; False at the deadline (loop time)."""
    loop = asyncio.get_running_loop()
    wanted = channel.encode()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        message = await pubsub.get_message(timeout=remaining)
        if message is not None and message["type"] == kind and message["channel"] == wanted:
            return True
