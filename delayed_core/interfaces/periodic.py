"""PeriodicStore: the optional broker role that lets every process schedule periodic tasks, leaderless.

Each schedule has a record in the broker: the last tick claimed, and facts for ``delayed periodic
list``. Any number of processes compute the same ticks and race to claim them; :meth:`claim` is a
compare-and-set that also enqueues the tick's task, atomically, so each tick is enqueued exactly once
whoever wins, and a process killed at any point leaves either the old record or the new one with its
task enqueued.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence


class PeriodicStore(abc.ABC):
    """Records of periodic schedules, shared by every process (the keys are global, not per queue)."""

    @abc.abstractmethod
    def periodic_start(self, name: str, now: str, facts: Mapping[str, str]) -> str:
        """Create the record of schedule ``name`` with ``now`` as its last tick if it has none, store
        ``facts`` (what the schedule is, its next run), and return the last tick the record holds (``now``
        for a new schedule: ticks before its first start never ran)."""

    @abc.abstractmethod
    def periodic_claim(self, name: str, expected: str, last: str, tasks: Sequence[bytes],
                       facts: Mapping[str, str]) -> tuple[bool, str]:
        """If the record's last tick is still ``expected``: set it to ``last``, store ``facts``, and
        append ``tasks`` to this broker's queue, all atomically. Return whether this call claimed, and
        the last tick the record holds afterwards (``""`` when the record is gone). A process that lost
        the race to an equal claim sees ``(False, last)``."""

    @abc.abstractmethod
    def periodic_note(self, name: str, facts: Mapping[str, str]) -> None:
        """Store facts about schedule ``name`` (the outcome of its last run) if it has a record."""

    @abc.abstractmethod
    def periodic_records(self) -> dict[str, dict[str, str]]:
        """Every schedule's record: name -> field -> value."""
