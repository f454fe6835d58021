"""Periodic tasks: ``@app.periodic(cron="*/5 * * * *", tz="Europe/Berlin")`` or ``every=30``.

There is no scheduler process and no leader. Every worker and sweeper process whose app knows a
periodic function runs a :class:`~delayed_core.periodic_loop.PeriodicLoop`; the loops compute the same
ticks and claim each one with a compare-and-set in the broker that also enqueues the tick's task, so each
tick is enqueued exactly once however many processes take part, start, stop or die.

Missed ticks (every process was down) follow the schedule's ``missed`` policy:

- ``"latest"`` (default): run the latest missed tick once;
- ``"all"`` (``catch_up=True``): run every missed tick, oldest first;
- ``"skip"``: run none of them; a tick counts as missed when no process claimed it within
  :data:`GRACE` seconds of its time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .periodic_schedule import Schedule, make_schedule

#: policies for missed ticks
MISSED_POLICIES = ("latest", "all", "skip")
#: seconds after its time within which a tick is on time (``missed="skip"`` runs only such ticks)
GRACE = 10.0


@dataclass(frozen=True)
class PeriodicSpec:
    """What ``@app.periodic`` registered for one function (kept in its TaskOptions)."""

    schedule: Schedule
    queue: str
    missed: str = "latest"
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def make_spec(*, cron: str | None, every: float | None, tz: str | None, queue: str, missed: str | None,
              catch_up: bool, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> PeriodicSpec:
    """Check every argument of ``@app.periodic`` now, raising a one-line ConfigError for a bad one."""
    schedule = make_schedule(cron, every, tz)
    if catch_up and missed not in (None, "all"):
        raise ConfigError(f"catch_up=True runs every missed tick; it contradicts missed={missed!r}")
    policy = "all" if catch_up else (missed or "latest")
    if policy not in MISSED_POLICIES:
        raise ConfigError(f"missed must be one of {', '.join(MISSED_POLICIES)}, not {policy!r}")
    if not isinstance(args, list | tuple):
        raise ConfigError(f"args must be a list or tuple, not {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigError(f"kwargs must be a dict, not {type(kwargs).__name__}")
    return PeriodicSpec(schedule, queue, policy, tuple(args), dict(kwargs or {}))
