"""Bounded queues: enqueue with a length check, and wait for room (back-pressure).

The check and the push are one atomic broker call (:meth:`Broker.enqueue_bounded`). Waiting for room
polls that call with a growing pause, from 10 ms up to 250 ms, so a producer blocked on a full queue
costs at most a few round trips a second and notices room within a quarter of a second.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .errors import ConfigError, QueueFull
from .interfaces import Broker, FlowControl

#: first and longest pause between two tries while waiting for room (seconds)
FIRST_PAUSE = 0.01
LONGEST_PAUSE = 0.25


def check_max_length(max_length: int | None) -> int | None:
    """``max_length`` as a bound (None or 0: unbounded); ConfigError for a negative or non-int one."""
    if max_length is None or max_length == 0:
        return None
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
        raise ConfigError(f"max_length must be an int >= 0 (0 = unbounded), not {max_length!r}")
    return max_length


def bounded_broker(broker: Broker) -> FlowControl:
    """``broker`` as a :class:`FlowControl`, or ConfigError naming the broker that cannot bound a queue."""
    if not isinstance(broker, FlowControl):
        raise ConfigError(f"the {type(broker).__name__} broker cannot bound a queue (max_length needs a "
                          "broker implementing FlowControl)")
    return broker


def push_bounded(broker: FlowControl, max_length: int, name: str, data: Sequence[bytes],
                 block: float | None) -> None:
    """Push ``data`` if it fits under ``max_length``; else wait up to ``block`` seconds for room, then
    raise QueueFull. A batch larger than the bound can never fit and fails at once."""
    if len(data) > max_length:
        raise QueueFull(f"queue {name!r}: a batch of {len(data)} tasks cannot fit under "
                        f"max_length={max_length}")
    deadline = time.monotonic() + (block or 0.0)
    pause = FIRST_PAUSE
    while not broker.enqueue_bounded(data, max_length):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = f" after waiting {block:g} s" if block else ""
            raise QueueFull(f"queue {name!r} is full (max_length={max_length}){waited}; "
                            f"{len(data)} task(s) not enqueued")
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, LONGEST_PAUSE)
