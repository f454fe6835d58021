"""How an idle slot waits for work in the cluster layout: one blocking BLPOP per queue, never one over
several queues.

In go-delayed's layout a slot serving several queues sends one BLPOP over every ``N_noti``. In a Redis
Cluster each queue is its own hash slot, maybe on its own node, and a command over several slots is
refused (CROSSSLOT). So a waiting slot has one helper thread per queue, each blocking on its queue's
``{N}_noti`` alone, on a connection of the node that serves that slot (the cluster client routes each
BLPOP, and follows MOVED when the slot moves). The first notification popped wakes the slot.

No notification is lost or kept back:

- A helper pops only while its slot waits or just after (its BLPOP was sent while the slot waited). A
  notification that comes when the slot no longer waits (it was woken by another queue, stopped, or
  timed out) is pushed back at once (RPUSH), for any other worker to take.
- If the process dies holding a popped notification, the task is still in its list: the sweeper restores
  the notification count (sweep.lua).

:meth:`SlotWaits.wake` wakes the slot at once (a stop), which ``CLIENT UNBLOCK`` cannot do here: the
BLPOPs run on pooled connections of several nodes. A helper still blocked then gives back what it pops,
and ends after 30 s without a wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis

from .connection import longest_block
from .errors import describe

logger = logging.getLogger("delayed.worker")

#: how long a helper whose BLPOP failed waits for its slot to come back (after the slot's own backoff)
HELPER_BLOCK = 1.0


class SlotWaits:
    """The waits of one slot (one worker id) over its queues' notification lists."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Condition()
        self._waiting = False
        self._woken = False
        self._popped: list[int] = []  # indexes of the lists whose notification this wait got
        self._keys: tuple[str, ...] = ()
        self._block = HELPER_BLOCK
        self._helpers: dict[str, threading.Thread] = {}
        self._errors: dict[str, redis.exceptions.RedisError] = {}  # key -> its helper's last error

    def wait(self, keys: Sequence[str], timeout: float) -> int | None:
        """Block until one of ``keys`` (notification lists, in priority order) gives a notification;
        pop it and return its index (the lowest when several came at once), or None after ``timeout`` or
        a :meth:`wake`. While the node of some of the keys is down, the wait goes on over the others (the
        helper says so in one line and retries); when every helper fails, the error is raised here, as a
        blocking call would."""
        with self._lock:
            self._keys = tuple(keys)
            self._block = min(timeout, longest_block())
            self._popped.clear()
            for gone in set(self._errors) - set(self._keys):
                del self._errors[gone]
            self._waiting, self._woken = True, False
            for key in self._keys:
                helper = self._helpers.get(key)
                if helper is None or not helper.is_alive():
                    helper = self._helpers[key] = threading.Thread(
                        target=self._help, args=(key,), name=f"delayed-wait {key}", daemon=True)
                    helper.start()
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._popped or self._woken or len(self._errors) == len(self._keys),
                                min(timeout, longest_block()))
            self._waiting = False
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

    def _help(self, key: str) -> None:
        """Block on ``key`` while the slot waits on it; hand over or give back what is popped."""
        while True:
            with self._lock:
                if not self._lock.wait_for(lambda: self._waiting and key in self._keys, 30.0):
                    self._helpers.pop(key, None)
                    return  # the slot no longer waits on this queue: end; the next wait starts a helper
            try:
                popped = self._client.execute_command("BLPOP", key, self._block)
            except redis.exceptions.RedisError as exc:
                with self._lock:
                    if key not in self._errors:  # one line per outage of this queue's node, not per retry
                        logger.error("waiting for tasks of %s failed (%s); serving the other queues, retrying "
                                     "every %gs", key, describe(exc), HELPER_BLOCK)
                    self._errors[key] = exc
                    self._lock.notify_all()
                    # Not in a hot loop: retry after a pause, or once the slot waits again.
                    self._lock.wait_for(lambda: False, HELPER_BLOCK)
                continue
            with self._lock:
                if self._errors.pop(key, None) is not None:
                    logger.info("waiting for tasks of %s works again", key)
            if popped is None:
                continue
            with self._lock:
                kept = self._waiting and key in self._keys
                if kept:
                    self._popped.append(self._keys.index(key))
                    self._lock.notify_all()
            if not kept:
                self._give_back(key)

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
        self._slots: dict[str, SlotWaits] = {}
        self._lock = threading.Lock()

    def for_slot(self, worker_id: str) -> SlotWaits:
        """The waits of ``worker_id`` (made on first use)."""
        with self._lock:
            waits = self._slots.get(worker_id)
            if waits is None:
                waits = self._slots[worker_id] = SlotWaits(self._client)
            return waits

    def wake(self, worker_ids: Sequence[str]) -> None:
        """Wake these slots' waits."""
        with self._lock:
            found = [self._slots[worker_id] for worker_id in worker_ids if worker_id in self._slots]
        for waits in found:
            waits.wake()

    def forget_all(self) -> None:
        """Drop every slot's waits (the broker closes)."""
        with self._lock:
            ids = list(self._slots)
        self.forget(ids)

    def forget(self, worker_ids: Sequence[str]) -> None:
        """Drop the waits of ids that went offline (their helpers end within a block)."""
        with self._lock:
            for worker_id in worker_ids:
                waits = self._slots.pop(worker_id, None)
                if waits is not None:
                    waits.wake()
