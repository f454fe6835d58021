"""Turning ``delay=`` / ``eta=`` arguments into a due time."""

from __future__ import annotations

import datetime as dt
import math
import time


def due_time(delay: float | None = None, eta: dt.datetime | None = None) -> float | None:
    """Unix time a task becomes due, or None to enqueue it at once.

    :param delay: seconds from now (>= 0).
    :param eta: an aware or naive (local time) datetime.
    """
    if delay is not None and eta is not None:
        raise ValueError("give delay or eta, not both")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
            raise TypeError(f"delay must be a number of seconds, not {delay!r}")
        if delay < 0:
            raise ValueError(f"delay must be >= 0, not {delay!r}")
        return time.time() + delay if delay > 0 else None
    if eta is not None:
        if not isinstance(eta, dt.datetime):
            raise TypeError(f"eta must be a datetime, not {type(eta).__name__}")
        due = eta.timestamp()
        return due if due > time.time() else None
    return None
