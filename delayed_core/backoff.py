"""Capped exponential backoff, for reconnecting to a broker that went away."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


class Backoff:
    """Delays of ``initial``, doubling up to ``cap`` seconds, each with up to 10% jitter.

    The jitter keeps a fleet of workers that lost the broker at the same moment from reconnecting in lockstep.
    """

    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._next = self.initial

    def next_delay(self) -> float:
        """The delay to wait now; the following one doubles."""
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay * (1 + random.random() * 0.1)

    def wait(self, stop: threading.Event, log: Callable[..., object] | None = None, *args: object) -> bool:
        """Sleep for the next delay, returning early when ``stop`` is set; True when it was set.

        With ``log``, first call ``log(*args, delay)``: a logging call whose message ends with the delay,
        as in ``backoff.wait(stop, logger.error, "broker down (%s); retrying in %.1fs", exc)``.
        """
        delay = self.next_delay()
        if log is not None:
            log(*args, delay)
        return stop.wait(delay)
