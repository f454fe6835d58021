"""How an idle slot waits for work in the cluster layout: one blocking BLPOP per queue, never one over
several queues.

In go-delayed's layout a slot serving several queues sends one BLPOP over every ``N_noti``. In a Redis
Cluster each queue is its own hash slot, maybe on its own node, and a command over several slots is
refused (CROSSSLOT). So a waiting slot has one helper thread per queue, each blocking on its queue's
``{N}_noti`` alone, on a connection of the node that serves that slot (the cluster client routes each
BLPOP, and follows MOVED when the slot moves). The first notification popped wakes the slot.

No notification is lost or kept back, and none is in transit once a wait returned:

- When the wait ends (a notification, a timeout or a :meth:`SlotWaits.wake`), the helpers still blocked
  are ended with ``CLIENT UNBLOCK`` (cluster_unblock.py: one round trip per node) and the wait returns
  only when every helper has answered. A BLPOP left blocked would pop the notification of a task
  enqueued just after, and the slot, not seeing it in its list until the helper gave it back, would take
  a lower queue's task first (the contract's priority order, tests/test_cluster_contract.py). An ACL
  without ``+client|unblock`` refuses it: that is said once per broker and no UNBLOCK is sent again; the
  end of a wait then waits for those BLPOPs to end by themselves (up to ``SETTLE_LIMIT``).
- A notification popped while the wait ends counts for that wait: the lowest queue's is kept, the others
  go back (RPUSH) before the wait returns. One that comes later still (a BLPOP that followed a slot
  move, sent through the cluster client, which cannot be ended early) is given back at once.
- If the process dies holding a popped notification, the task is still in its list: the sweeper restores
  the notification count (sweep.lua).

A helper ends after 30 s without a wait, or when the waits close (the broker closes, the id goes
offline). Closing ends the BLPOPs still blocked and joins the helpers before the broker disconnects its
pools: a helper reading a connection that another thread closes under it would meet whatever the parser
raises on a closed socket (not always a redis-py error). One that still does (a join that timed out)
ends quietly; an error that is not an outage is one log line, and the helper carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from .cluster_unblock import Blocker, Redirected, blocking_pop, unblock
from .connection import longest_block
from .errors import describe

logger = logging.getLogger("delayed.worker")

#: how long a helper whose BLPOP failed waits for its slot to come back (after the slot's own backoff)
HELPER_BLOCK = 1.0
#: how long the end of a wait waits for its helpers to answer CLIENT UNBLOCK (asked again every 50 ms)
SETTLE_LIMIT = 2.0


class UnblockRight:
    """Whether a broker's user may end BLPOPs with ``CLIENT UNBLOCK``, shared by the waits of its slots.
    The first refusal is logged and ends the UNBLOCKs for good: each one would be refused too, 20 times a
    second while a wait ends (and the ACL LOG would fill with them)."""

    def __init__(self) -> None:
        self.refused = False
        self._lock = threading.Lock()

    def unblock(self, blockers: Sequence[Blocker]) -> None:
        """``CLIENT UNBLOCK`` ``blockers`` (cluster_unblock.py), unless a refusal came before."""
        if self.refused or not blockers:
            return
        refusal = unblock(blockers)
        if refusal is None:
            return
        with self._lock:
            if self.refused:
                return
            self.refused = True
        logger.warning("CLIENT UNBLOCK refused (%s): the ACL user needs +client|unblock. Until the worker "
                       "restarts none is sent, and each end of a slot's wait (a task on one of its queues, a "
                       "stop) waits up to %g s for the BLPOPs still blocked to end by themselves",
                       describe(refusal), SETTLE_LIMIT)


class SlotWaits:
    """The waits of one slot (one worker id) over its queues' notification lists.

    :param client: the broker's client.
    :param right: whether ``CLIENT UNBLOCK`` is allowed; shared by the slots of a broker (its own if None).
    """

    def __init__(self, client: Any, right: UnblockRight | None = None) -> None:
        self._client = client
        self._right = right or UnblockRight()
        self._lock = threading.Condition()
        self._waiting = False  # from the start of a wait until its helpers settled
        self._settling = False  # the wait is over: no new BLPOP, the blocked ones are being ended
        self._woken = False
        self._blocking: dict[str, Blocker] = {}  # key -> where its helper's BLPOP blocks now
        self._redirected: set[str] = set()  # keys whose next BLPOP goes through the cluster client
        self._popped: list[int] = []  # indexes of the lists whose notification this wait got
        self._keys: tuple[str, ...] = ()
        self._block = HELPER_BLOCK
        self._helpers: dict[str, threading.Thread] = {}
        self._errors: dict[str, redis.exceptions.RedisError] = {}  # key -> its helper's last error
        # keys whose helper is on its way to a BLPOP (a pooled connection, CLIENT ID): I/O that the end of
        # a wait, and a close, wait for too
        self._busy: set[str] = set()
        self._closed = False

    def wait(self, keys: Sequence[str], timeout: float) -> int | None:
        """Block until one of ``keys`` (notification lists, in priority order) gives a notification;
        pop it and return its index (the lowest when several came at once), or None after ``timeout`` or
        a :meth:`wake`. While the node of some of the keys is down, the wait goes on over the others (the
        helper says so in one line and retries); when every helper fails, the error is raised here, as a
        blocking call would."""
        with self._lock:
            if self._closed:
                return None  # the broker closed meanwhile: the slot's next wait gets fresh waits
            self._keys = tuple(keys)
            self._block = min(timeout, longest_block())
            self._popped.clear()
            for gone in set(self._errors) - set(self._keys):
                del self._errors[gone]
            self._waiting, self._settling, self._woken = True, False, False
            for key in self._keys:
                helper = self._helpers.get(key)
                if helper is None or not helper.is_alive():
                    helper = self._helpers[key] = threading.Thread(
                        target=self._help, args=(key,), name=f"delayed-wait {key}", daemon=True)
                    helper.start()
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._popped or self._woken or len(self._errors) == len(self._keys),
                                min(timeout, longest_block()))
            self._settling = True
        self._settle()
        with self._lock:
            self._waiting = self._settling = False
            popped, self._popped = sorted(self._popped), []
            errors = list(self._errors.values()) if len(self._errors) == len(self._keys) else []
        for index in popped[1:]:  # came at once as the one we keep: give them back
            self._give_back(self._keys[index])
        if popped:
            return popped[0]
        if errors:
            raise errors[0]
        return None

    def wake(self) -> None:
        """End the current wait (if any) at once; it returns None."""
        with self._lock:
            self._woken = True
            self._lock.notify_all()

    def close(self, timeout: float = SETTLE_LIMIT) -> None:
        """End the wait in progress and every helper, for good: the broker closes, or the id went
        offline. The BLPOPs still blocked are ended and the helpers joined (up to ``timeout``), so that
        none is still reading a connection when the broker disconnects its pools."""
        with self._lock:
            self._closed = self._woken = True
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                blocked = list(self._blocking.values())
                helpers = [helper for helper in self._helpers.values()
                           if helper.is_alive() and helper is not threading.current_thread()]
            # Again each round (a BLPOP may have been sent just after the last one), and once more when the
            # time is up: a close(0) still ends the BLPOPs it cannot wait for.
            self._right.unblock(blocked)
            if not helpers or time.monotonic() > deadline:
                return
            left = max(0.0, deadline - time.monotonic())
            helpers[0].join(left if self._right.refused else min(0.05, left))

    def _settle(self) -> None:
        """End the BLPOPs still blocked and wait for their helpers' answers (and for helpers on their way to
        a BLPOP, which they will not send now). Asked again every 50 ms: a helper may send its BLPOP just
        after an UNBLOCK; not at all once refused (the helpers' BLPOPs end by themselves). Bounded: a helper
        that does not answer in time gives back what it pops later."""
        deadline = time.monotonic() + SETTLE_LIMIT
        while True:
            with self._lock:
                blocked = list(self._blocking.values())
                if not blocked and not self._busy:
                    return
            left = deadline - time.monotonic()
            if left < 0:
                return
            self._right.unblock(blocked)
            with self._lock:
                self._lock.wait_for(lambda: not self._blocking and not self._busy,
                                    left if self._right.refused else 0.05)

    def _on(self, key: str) -> bool:
        """True while the slot waits on ``key`` (call it holding the lock)."""
        return self._waiting and not self._settling and not self._closed and key in self._keys

    def _started(self, key: str, blocker: Blocker) -> bool:
        """Note where ``key``'s BLPOP is about to block; False when the wait has ended meanwhile (then
        it is not sent: :meth:`_settle` may have looked at ``_blocking`` already)."""
        with self._lock:
            self._busy.discard(key)
            self._lock.notify_all()
            if not self._on(key):
                return False
            self._blocking[key] = blocker
            return True

    def _pop(self, key: str, block: float) -> object:
        """One BLPOP on ``key``: on a connection that :meth:`_settle` can end, unless the last one met a
        slot move (then through the cluster client, which follows MOVED and ASK; once)."""
        if key in self._redirected:
            self._redirected.discard(key)
            with self._lock:  # nothing can end this one: the end of the wait does not wait for it
                self._busy.discard(key)
                self._lock.notify_all()
            return self._client.execute_command("BLPOP", key, block)
        try:
            return blocking_pop(self._client, key, block, lambda blocker: self._started(key, blocker))
        except Redirected:
            self._redirected.add(key)
            return None

    def _help(self, key: str) -> None:
        """Block on ``key`` while the slot waits on it; hand over or give back what is popped."""
        while True:
            with self._lock:
                if not self._lock.wait_for(lambda: self._closed or self._on(key), 30.0) or self._closed:
                    if self._helpers.get(key) is threading.current_thread():
                        del self._helpers[key]
                    return  # no wait on this queue for 30 s, or closed: end; the next wait starts a helper
                block = self._block
                self._busy.add(key)
            try:
                popped = self._pop(key, block)
            except Exception as exc:
                if self._failed(key, exc):
                    return
                continue
            with self._lock:  # one step with leaving _blocking: _settle then sees the pop counted
                self._busy.discard(key)
                self._blocking.pop(key, None)
                if self._errors.pop(key, None) is not None:
                    logger.info("waiting for tasks of %s works again", key)
                kept = popped is not None and self._waiting and key in self._keys
                if kept:
                    self._popped.append(self._keys.index(key))
                self._lock.notify_all()
            if popped is not None and not kept:
                self._give_back(key)

    def _failed(self, key: str, exc: Exception) -> bool:
        """A helper's BLPOP failed: say so (one line per outage of the queue's node), pause, and return
        False to retry; True when the waits closed meanwhile (the broker closed the connection under the
        BLPOP: not a fault, and nothing to say)."""
        with self._lock:
            self._busy.discard(key)
            self._blocking.pop(key, None)
            self._lock.notify_all()
            if self._closed:
                logger.debug("waiting for tasks of %s ended by the broker's close (%s)", key, describe(exc))
                return True
            self._redirected.add(key)  # the cluster client reads the slot map again
            if not isinstance(exc, redis.exceptions.RedisError):
                # Not an outage: a bug, or redis-py meeting a state it does not expect. Counted as a failed
                # wait all the same (if every queue's fails, the slot backs off and retries).
                logger.error("waiting for tasks of %s failed unexpectedly (%s: %s); retrying every %gs", key,
                             type(exc).__name__, describe(exc), HELPER_BLOCK)
                exc = redis.exceptions.ConnectionError(f"{type(exc).__name__}: {describe(exc)}")
            elif key not in self._errors:  # one line per outage of this queue's node, not per retry
                logger.error("waiting for tasks of %s failed (%s); serving the other queues, retrying every %gs",
                             key, describe(exc), HELPER_BLOCK)
            self._errors[key] = exc
            self._lock.notify_all()
            # Not in a hot loop: retry after a pause, or once the slot waits again; a close ends the pause.
            return self._lock.wait_for(lambda: self._closed, HELPER_BLOCK)

    def _give_back(self, key: str) -> None:
        try:
            self._client.execute_command("RPUSH", key, "1")
        except redis.exceptions.RedisError as exc:  # the sweeper restores it; say so once per case
            logger.warning("could not give back a notification of %s (%s); the next sweep restores it", key,
                           describe(exc))


class ClusterWaits:
    """The :class:`SlotWaits` of every slot of one broker, by worker id."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._right = UnblockRight()
        self._slots: dict[str, SlotWaits] = {}
        self._lock = threading.Lock()

    def for_slot(self, worker_id: str) -> SlotWaits:
        """The waits of ``worker_id`` (made on first use)."""
        with self._lock:
            waits = self._slots.get(worker_id)
            if waits is None:
                waits = self._slots[worker_id] = SlotWaits(self._client, self._right)
            return waits

    def wake(self, worker_ids: Sequence[str]) -> None:
        """Wake these slots' waits."""
        with self._lock:
            found = [self._slots[worker_id] for worker_id in worker_ids if worker_id in self._slots]
        for waits in found:
            waits.wake()

    def forget_all(self) -> None:
        """Drop every slot's waits (the broker closes): once this returns, no helper reads a connection."""
        with self._lock:
            ids = list(self._slots)
        self.forget(ids)

    def forget(self, worker_ids: Sequence[str]) -> None:
        """Drop the waits of ids that went offline, and end their helpers (:meth:`SlotWaits.close`)."""
        with self._lock:
            dropped = [self._slots.pop(worker_id) for worker_id in worker_ids if worker_id in self._slots]
        deadline = time.monotonic() + SETTLE_LIMIT
        for waits in dropped:
            waits.close(max(0.0, deadline - time.monotonic()))
