"""Task records on Redis: the :class:`~delayed_core.interfaces.tracking.TaskTracker` of the Redis broker.

Keys: ``delayed_task:<id>`` (a tracked task's record, with a TTL; also the channel announcing its end)
and the channel ``delayed_cancel:<queue>``, beside go-delayed's layout, which stays as it is (see
``keys.py``). While the task is pending a record is one string for a plain ``.delay()``
(``lua/_pending.lua``; ``track_read.lua`` returns its fields as a hash's) and a hash otherwise (scheduled,
retrying, or under a chosen or derived id); once it is settled for good, one string:
``"<enqueued ms> <status>\n"`` and a msgpack map of the other fields (``lua/_settle.lua``;
:func:`settled_record` reads it) when a worker or the sweeper settles it. Two settled records are hashes,
and are read as such: one that ``cancel()`` took out of the queue before it ran (``track_cancel.lua``),
and one settled by an earlier version. In the cluster
layout a record is ``{N}_task:<id>``, in its queue's slot, and announced on a shard channel
(record_calls.py); cluster_tracking.py has what else differs there.

Round trips: a tracked enqueue is one script call (``track_submit``, or ``track_submit_one`` for a plain
``.delay()``); releasing, requeueing or
dead-lettering a tracked task is the consumer's usual script with the record write composed around it
(one call); reading a record is one script call; a waiter subscribes, reads, and sleeps on the channel.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import msgpack
import redis

from delayed_core.interfaces import tracking as st
from delayed_core.interfaces.tracking import Finish, Submission, TaskRecord, TaskTracker

from . import resp, scripts
from .connection import unavailable_as_broker_error
from .direct import DirectCaller
from .errors import UNAVAILABLE, translate
from .keys import GO_DELAYED, QueueKeys, cancel_channel, record_key
from .monitoring import this_minute
from .pipelined_wait import PipelinedWaiter
from .pubsub_wake import Waker, next_message
from .record_calls import record_calls
from .several_queues import _group_keys
from .waiting import RecordWaiter

if TYPE_CHECKING:
    from .async_tracking import AsyncRecords
    from .broker import RedisBroker

logger = logging.getLogger("delayed.worker")

#: each record write that can be composed around a consumer script -> the Lua helpers it calls
_WRITE_HELPERS = {"track_settle": ("_settle",), "track_finish": ("_pending", "_record")}


def _composed(name: str, write: str = "track_settle") -> scripts.Script:
    """The consumer script ``name`` with the record write composed around it (one EVALSHA): ``write`` is
    ``track_settle`` for a call that settles the task for good, ``track_finish`` for a retry."""
    helpers = "".join(scripts._read(helper) for helper in _WRITE_HELPERS[write])
    source = scripts._read("_prelude") + helpers + scripts._read(write + "_args") + scripts._read(name) + \
        scripts._read(write + "_write")
    return scripts.Script("track_" + name, source, hashlib.sha1(source.encode()).hexdigest())


SUBMIT = scripts.load_script("track_submit", helpers=("_record_state",))
SUBMIT_ONE = scripts.load_script("track_submit_one")
READ = scripts.load_script("track_read", helpers=("_pending",))
CANCEL = scripts.load_script("track_cancel", helpers=("_pending",))
MARK = scripts.load_script("track_mark", helpers=("_record_state", "_settle"))
RELEASE_TAKE = scripts.load_script("release_take_settle", helpers=("_settle",))
RELEASE_TAKE_FIRST = _composed("release_take_first")
REQUEUE = _composed("requeue", "track_finish")
DEAD_LETTER = _composed("dead_letter")


@lru_cache(maxsize=256)
def _keys(queue: str, layout: str = GO_DELAYED) -> QueueKeys:
    """A queue's keys, built once (an enqueue needs them every time)."""
    return QueueKeys.for_queue(queue, layout)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _tail(finish: Finish) -> tuple[Any, ...]:
    """The arguments ``track_finish_args.lua`` takes off the end of ARGV (a retry's record, a hash)."""
    fields = finish.fields
    return (*chain.from_iterable(fields.items()), _ms(finish.ttl), len(fields))


def settle_args(finish: Finish) -> tuple[int, bytes]:
    """The arguments ``track_settle_args.lua`` takes off the end of ARGV: the TTL in ms and the settled
    record from the space after its enqueue time on (the script puts that time in front), finish time
    included."""
    rest = finish.fields.copy()  # the Finish stays as it is: a failed call sends it again
    status = rest.pop("s", st.UNKNOWN)
    if "fi" not in rest:
        rest["fi"] = int(time.time() * 1000)  # the worker's clock, as the start time
    head = _SETTLED_HEADS.get(status) or b" %b\n" % str(status).encode()
    return _ms(finish.ttl), head + msgpack.packb(rest)


#: the settled record's status part, made once for the statuses a worker writes
_SETTLED_HEADS = {status: b" %b\n" % status.encode() for status in (st.SUCCEEDED, st.DEAD, st.CANCELLED)}


@lru_cache(maxsize=256)
def _release_one_parts(queue: str, worker_id: str, take_next: bool, minute: int) -> tuple[bytes, bytes]:
    """The packed parts of a one-queue tracked release that stay the same for a slot all minute: up to
    the record's key, and between that key and the record write's own arguments."""
    k = _keys(queue)
    keys = (k.queue, k.notifications, k.processing, k.recoveries, k.throughput)
    # EVALSHA, the SHA, the key count, the keys and the record's key, 3 arguments, the TTL and the record
    head = resp.array_head(3 + len(keys) + 1 + 3 + 2) + resp.bulks(("EVALSHA", RELEASE_TAKE.sha, len(keys) + 1,
                                                                    *keys))
    return head, resp.bulks((worker_id, "1" if take_next else "0", minute))


def release_one_command(queue: str, worker_id: str, take_next: bool, minute: int, record: str, ttl: int,
                        settled: bytes) -> bytes:
    """The EVALSHA of ``RELEASE_TAKE`` (release_take_settle.lua: release_take.lua with the record write)
    as RESP bytes: the same bytes any client would send for it, with the parts that stay the same for a
    slot all minute packed once. Packing its 14 arguments anew cost a tracked task more than the rest of
    its release."""
    head, middle = _release_one_parts(queue, worker_id, take_next, minute)
    key, ttl_text = record.encode(), b"%d" % ttl
    # resp.bulk() three times over, in one formatting: a busy slot sends this per task
    return b"%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n$%d\r\n%b\r\n" % (head, len(key), key, middle, len(ttl_text), ttl_text,
                                                             len(settled), settled)


def _number(value: bytes | None) -> float | None:
    return None if value is None else int(value) / 1000


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def settled_record(task_id: str, value: bytes) -> TaskRecord:
    """A :class:`TaskRecord` from a settled record (see the module docstring); ``unknown`` for a value
    that is not one (another program's string at the key)."""
    head, _, body = value.partition(b"\n")
    enqueued, _, status = head.partition(b" ")
    try:
        raw = msgpack.unpackb(body)
        if not isinstance(raw, dict):
            raise ValueError("not a map")
        return TaskRecord(
            task_id, status.decode(), queue=raw.get("q", ""), func=raw.get("fn", ""),
            enqueued=_number(enqueued or None), started=_number(raw.get("st")), finished=_number(raw.get("fi")),
            attempts=int(raw.get("a", 0)), worker=raw.get("w", ""), result=raw.get("r"),
            result_error=raw.get("re", ""), error_type=raw.get("et", ""), message=raw.get("em", ""),
            traceback=raw.get("tb", ""))
    except Exception as exc:  # any bytes may sit at the key: a record it is not
        logger.warning("task %s: its record is not one pydelayed wrote (%s); status unknown", task_id, exc)
        return TaskRecord(task_id, st.UNKNOWN)


def record_from(task_id: str, flat: list[bytes]) -> TaskRecord:
    """A :class:`TaskRecord` from ``track_read``'s reply, the derived status worked out here."""
    if len(flat) == 1:  # settled: the record's one string
        return settled_record(task_id, flat[0])
    if not flat:
        return TaskRecord(task_id, st.UNKNOWN)
    raw = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
    status = _text(raw.get("s")) or st.UNKNOWN
    worker = _text(raw.get("w"))
    if "hw" in raw:  # a worker holds the task's current bytes
        worker = _text(raw["hw"])
        # held by a dead worker: back in the queue at the next sweep
        status = st.RUNNING if _text(raw.get("hl")) == "1" else st.QUEUED
    elif status == st.SCHEDULED and int(raw.get("due", b"0")) <= int(raw.get("now", b"0")):
        status = st.QUEUED
    return TaskRecord(
        task_id, status, queue=_text(raw.get("q")), func=_text(raw.get("fn")), enqueued=_number(raw.get("en")),
        started=_number(raw.get("st")), finished=_number(raw.get("fi")), attempts=int(raw.get("a", b"0")),
        worker=worker, result=raw.get("r"), result_error=_text(raw.get("re")), error_type=_text(raw.get("et")),
        message=_text(raw.get("em")), traceback=_text(raw.get("tb")))


def submit_call(submissions: Sequence[Submission],
                layout: str = GO_DELAYED) -> tuple[scripts.Script, tuple[str, ...], tuple[Any, ...]]:
    """The script, KEYS and ARGV writing a batch sharing a queue, a delay and a uniqueness rule:
    ``track_submit_one`` for one task with a random id due at once (a plain ``.delay()``), else
    ``track_submit``."""
    first = submissions[0]
    keys = _keys(first.queue, layout)
    if len(submissions) == 1 and first.due_in is None and not first.unique_window:
        return SUBMIT_ONE, (keys.queue, keys.notifications, keys.record(first.task_id)), (
            first.data, first.func, int(time.time() * 1000), _ms(first.pending_ttl))
    scheduled = first.due_in is not None
    delay = max(0, int(first.due_in * 1000)) if first.due_in is not None else ""
    unique = -1 if first.unique_window < 0 else int(first.unique_window * 1000)
    args: list[Any] = [delay, unique, int(time.time() * 1000)]
    for submission in submissions:
        args += (submission.data, submission.func, _ms(submission.pending_ttl),
                 secrets.token_hex(8) if scheduled else "")
    records = [keys.record(submission.task_id) for submission in submissions]
    return SUBMIT, (keys.queue, keys.notifications, keys.scheduled, *records), tuple(args)


def submit_answers(submissions: Sequence[Submission], replies: list[Any] | int) -> list[tuple[bool, str]]:
    """The submit script's replies as :meth:`TaskTracker.submit_many` answers."""
    added = st.QUEUED if submissions[0].due_in is None else st.SCHEDULED
    if not isinstance(replies, list):  # track_submit_one: its one task was enqueued
        return [(True, added)]
    return [(True, added) if reply == 1 else (False, reply.decode() if isinstance(reply, bytes) else str(reply))
            for reply in replies]


class RedisTracker(TaskTracker):
    """Task records for the queues of one Redis database (see the module docstring)."""

    def __init__(self, broker: RedisBroker) -> None:
        super().__init__(broker)
        self.broker: RedisBroker = broker
        self.client: redis.Redis = broker.client
        self.calls = record_calls(broker.keys)
        self._waiter = self._make_waiter()
        self._async: AsyncRecords | None = None

    def _make_waiter(self) -> PipelinedWaiter:
        """What :meth:`wait` waits with: SUBSCRIBE and the read pipelined, polling as the fallback."""
        return PipelinedWaiter(self.client, READ, record_from, RecordWaiter(self.client, self.read))

    def submit(self, submission: Submission) -> tuple[bool, str]:
        """One script call: the enqueue (or schedule) and the record."""
        return self.submit_many((submission,))[0]

    def submit_many(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """One script call for the whole batch (they share a queue, a delay and a uniqueness rule)."""
        script, keys, args = submit_call(submissions, self.calls.layout)
        broker = self.broker
        try:  # not unavailable_as_broker_error(): a context manager costs this hot path 2 us
            reply = script(broker._call, keys, args)
            if broker.replica_wait:
                broker.replica_wait.after(broker._call)  # +1 round trip, as a plain enqueue
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc
        return submit_answers(submissions, reply)

    def release_and_take(self, worker_id: str, queue: str, queues: Sequence[str], take_next: bool,
                         finish: Finish) -> tuple[str, bytes] | None:
        """release_take (one queue) or release_take_first (several) with the record write: still one round
        trip per busy task."""
        if len(queues) == 1 and isinstance(self.broker._call, DirectCaller):
            return self._release_one(self.broker._call, worker_id, queue, take_next, finish)
        group = tuple(queues)
        _, releasing, _ = _group_keys(group)  # the consumer's own keys and arguments, plus the tracking tail
        args = (worker_id, group.index(queue) + 1, "1" if take_next else "0", this_minute(), *settle_args(finish))
        keys = (*releasing[queue], record_key(finish.task_id))
        try:  # not unavailable_as_broker_error(): a context manager costs this hot path 2 us per task
            reply = RELEASE_TAKE_FIRST(self.broker._call, keys, args)
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc
        return None if reply is None else (queues[int(reply[0]) - 1], reply[1])

    def _release_one(self, call: DirectCaller, worker_id: str, queue: str, take_next: bool,
                     finish: Finish) -> tuple[str, bytes] | None:
        """The one-queue release: the release_take script with the record write, its command packed around
        the part that stays the same for a slot all minute (see :func:`release_one_command`)."""
        ttl, record = settle_args(finish)
        command = release_one_command(queue, worker_id, take_next, this_minute(), record_key(finish.task_id), ttl,
                                      record)
        try:  # not unavailable_as_broker_error(): a context manager costs this hot path 2 us per task
            task = RELEASE_TAKE.call_packed(call, command)
        except redis.exceptions.RedisError as exc:
            raise translate(exc) from exc
        return None if task is None else (queue, task)

    def requeue(self, worker_id: str, queue: str, task: bytes, delay: float, finish: Finish) -> None:
        """The requeue script with the record write; the record keeps the retry's bytes (and member)."""
        k = _keys(queue, self.calls.layout)
        token = secrets.token_hex(8)
        fields: dict[str, Any] = {"fi": int(time.time() * 1000), **finish.fields, "t": task}
        if delay > 0:
            fields["m"] = token.encode() + task
        tracked = Finish(finish.task_id, fields, finish.ttl)
        args = (worker_id, task, _ms(delay) if delay > 0 else 0, "0", token, *_tail(tracked))
        with unavailable_as_broker_error():
            REQUEUE(self.client.execute_command, (k.queue, k.notifications, k.processing, k.scheduled,
                                                  k.record(finish.task_id)), args)

    def dead_letter(self, worker_id: str, queue: str, entry: bytes, keep: int, finish: Finish) -> None:
        """The dead-letter script with the record write."""
        k = _keys(queue, self.calls.layout)
        with unavailable_as_broker_error():
            DEAD_LETTER(self.client.execute_command, (k.processing, k.dead, k.throughput, k.record(finish.task_id)),
                        (worker_id, entry, keep, this_minute(), *settle_args(finish)))

    def mark(self, finish: Finish) -> bool:
        """One script call (the sweeper's, after it buried a poison task)."""
        with unavailable_as_broker_error():
            return bool(MARK(self.client.execute_command, (self.calls.key(finish.task_id),), settle_args(finish)))

    def read(self, task_id: str) -> TaskRecord:
        """One script call."""
        with unavailable_as_broker_error():
            return record_from(task_id, READ(self.client.execute_command, *self.calls.read(task_id)))

    def wait(self, task_id: str, timeout: float) -> TaskRecord:
        """Read; if not finished, sleep on the record's channel (see :mod:`.waiting`): a handful of
        commands whatever the timeout."""
        return self._waiter.wait(task_id, timeout)

    async def submit_many_async(self, submissions: Sequence[Submission]) -> list[tuple[bool, str]]:
        """One script call on this event loop's asyncio client."""
        records = self._async_records()
        return await (super().submit_many_async(submissions) if records is None else records.submit_many(submissions))

    async def read_async(self, task_id: str) -> TaskRecord:
        """One script call on this event loop's asyncio client."""
        records = self._async_records()
        return await (super().read_async(task_id) if records is None else records.read(task_id))

    async def wait_async(self, task_id: str, timeout: float) -> TaskRecord:
        """As :meth:`wait`, on the event loop: redis.asyncio pub/sub, no thread."""
        records = self._async_records()
        return await (super().wait_async(task_id, timeout) if records is None else records.wait(task_id, timeout))

    def _async_records(self) -> AsyncRecords | None:
        """The asyncio side, made on first use; None for a broker built without a URL (a test's client):
        the base class's thread-based calls serve then."""
        if self._async is None and self.broker.url is not None:
            from .async_tracking import AsyncRecords  # imports this module

            self._async = AsyncRecords(self.broker.url, self.broker.replica_wait, self.calls)
        return self._async

    def cancel(self, task_id: str, ttl: float) -> int:
        """One script call: remove the task from the queue or the schedule and mark it cancelled, or
        publish a stop request to the workers of its queue."""
        with unavailable_as_broker_error():
            return int(CANCEL(self.client.execute_command, *self.calls.cancel(task_id, _ms(ttl))))

    def watch_cancels(self, queues: Sequence[str]) -> RedisCancelWatcher:
        """A pub/sub subscription to the queues' stop requests."""
        layout = self.calls.layout
        return RedisCancelWatcher(self.client, [cancel_channel(_keys(name, layout).queue) for name in queues])


class RedisCancelWatcher(st.CancelWatcher):
    """Stop requests heard on the queues' channels; subscribes afresh after a lost connection."""

    def __init__(self, client: redis.Redis, channels: list[str]) -> None:
        super().__init__()
        self.client = client
        self.channels = channels
        self.pubsub: Any = None
        self.refused = False
        self.waker = Waker()

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block on the subscription up to ``timeout`` seconds (then drain what else arrived)."""
        if self.refused:
            return super().wait(timeout)
        try:
            if self.pubsub is None:
                self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(*self.channels)
            requests: list[tuple[str, str]] = []
            message = next_message(self.pubsub, timeout, self.waker)
            while message is not None:
                slot_id, _, task_id = message["data"].decode(errors="replace").partition(" ")
                requests.append((slot_id, task_id))
                message = self.pubsub.get_message(timeout=0)
            return requests
        except redis.exceptions.ResponseError as exc:
            # SUBSCRIBE refused (an ACL without pub/sub rights on these channels): say so once, and hear
            # nothing from now on; queued and scheduled tasks can still be cancelled.
            logger.warning("cannot subscribe to %s (%s); running tasks of this worker cannot be cancelled",
                           ", ".join(self.channels), " ".join(str(exc).split()))
            self.close()
            self.refused = True
            return []
        except UNAVAILABLE as exc:
            self.close()  # the subscription went with the connection: subscribe afresh on the next wait
            raise translate(exc) from exc

    def wake(self) -> None:
        """End the wait in progress, and every later one, at once (see :mod:`~delayed_redis.pubsub_wake`)."""
        self.waker.wake()
        super().wake()  # a refused subscription waits in the base class

    def close(self) -> None:
        """Drop the subscription."""
        self.waker.close()
        if self.pubsub is not None:
            pubsub, self.pubsub = self.pubsub, None
            with contextlib.suppress(redis.exceptions.RedisError):
                pubsub.close()
