"""When periodic tasks fall due: fixed intervals (``every=30``) and cron expressions in a time zone.

A schedule is a sequence of *ticks*, unix times in seconds. ``every=N`` ticks at the multiples of N
seconds since the epoch, so every process computes the same ticks without talking to the others. A cron
expression ticks where cronsim says, in its time zone; cronsim handles daylight saving time the way
Debian's cron does for expressions with a fixed minute and hour: a time the clocks skip runs at the first
minute that exists after it, and a time the clocks repeat runs once (at its first occurrence).

Cron schedules need the optional extra ``pydelayed[periodic]`` (cronsim, no dependencies of its own).
"""

from __future__ import annotations

import abc
import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

#: at most this many ticks are computed in one call (a catch-up after a long outage goes in steps)
MAX_TICKS = 1000


class Schedule(abc.ABC):
    """The ticks of one periodic task."""

    @abc.abstractmethod
    def ticks(self, after: float, until: float, limit: int = MAX_TICKS) -> list[float]:
        """Ticks ``t`` with ``after < t <= until``, oldest first, at most ``limit`` of them."""

    @abc.abstractmethod
    def latest(self, until: float) -> float | None:
        """The last tick at or before ``until`` (None if there is none)."""

    @abc.abstractmethod
    def next_after(self, after: float) -> float:
        """The first tick after ``after``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The schedule as the user wrote it (``every 30s``, ``cron */5 * * * * Europe/Berlin``)."""


class Every(Schedule):
    """Every ``seconds`` seconds, at the multiples of ``seconds`` since the epoch."""

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0 \
                or math.isinf(seconds):
            raise ConfigError(f"every must be a number of seconds > 0, not {seconds!r}")
        self.seconds = float(seconds)
        # Whole milliseconds: float division of epoch-sized times by 0.2 is off by more than any epsilon.
        self._ms = round(self.seconds * 1000)
        if self._ms < 1:
            raise ConfigError(f"every must be at least 0.001 seconds, not {seconds!r}")

    def _index(self, t: float) -> int:
        return round(t * 1000) // self._ms

    def _tick(self, index: int) -> float:
        return index * self._ms / 1000

    def ticks(self, after: float, until: float, limit: int = MAX_TICKS) -> list[float]:
        first, last = self._index(after) + 1, min(self._index(until), self._index(after) + limit)
        return [self._tick(k) for k in range(first, last + 1)]

    def latest(self, until: float) -> float | None:
        return self._tick(self._index(until))

    def next_after(self, after: float) -> float:
        return self._tick(self._index(after) + 1)

    def describe(self) -> str:
        return f"every {self.seconds:g}s"


class Cron(Schedule):
    """A five-field cron expression (six with seconds first) in time zone ``tz``."""

    def __init__(self, expression: str, tz: str = "UTC") -> None:
        try:
            import cronsim
        except ImportError:
            raise ConfigError("cron schedules need cronsim: pip install 'pydelayed[periodic]'") from None
        self._cronsim: Any = cronsim
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')") from None
        if not isinstance(expression, str):
            raise ConfigError(f"cron must be a string such as '*/5 * * * *', not {expression!r}")
        try:
            cronsim.CronSim(expression, dt.datetime.now(self.zone))
        except cronsim.CronSimError as exc:
            raise ConfigError(f"bad cron expression {expression!r}: {exc}") from None
        self.expression = expression
        self.tz = tz

    def _iterate(self, start: float, reverse: bool = False) -> Any:
        return self._cronsim.CronSim(self.expression, dt.datetime.fromtimestamp(start, self.zone), reverse=reverse)

    def ticks(self, after: float, until: float, limit: int = MAX_TICKS) -> list[float]:
        result: list[float] = []
        for when in self._iterate(after):
            t = when.timestamp()
            if t > until or len(result) >= limit:
                break
            if t > after and (not result or t > result[-1]):  # strictly increasing, whatever the zone does
                result.append(t)
        return result

    def latest(self, until: float) -> float | None:
        # From a second later: cronsim's reverse search starts a second before a whole-second time, and a
        # tick at exactly ``until`` must be found.
        for when in self._iterate(until + 1, reverse=True):
            t = when.timestamp()
            if t <= until:
                return t
        return None  # pragma: no cover - cronsim raises StopIteration only for impossible dates

    def next_after(self, after: float) -> float:
        for when in self._iterate(after):
            t = when.timestamp()
            if t > after:
                return t
        raise ConfigError(f"cron expression {self.expression!r} never falls due")  # pragma: no cover

    def describe(self) -> str:
        return f"cron {self.expression} {self.tz}"


def make_schedule(cron: str | None, every: float | None, tz: str | None) -> Schedule:
    """The schedule of ``@app.periodic``: exactly one of ``cron`` and ``every``; ConfigError otherwise."""
    if (cron is None) == (every is None):
        raise ConfigError("periodic needs exactly one of cron='...' and every=SECONDS")
    if every is not None:
        if tz is not None:
            raise ConfigError("tz applies to cron schedules only (every= counts seconds)")
        return Every(every)
    assert cron is not None
    return Cron(cron, tz or "UTC")
