"""The admin role of a broker: what ``delayed info``, ``delayed dead`` and ``delayed doctor`` read."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QueueInfo:
    """A snapshot of one queue, for ``delayed info``.

    :param processing: worker id -> (task bytes, whether that worker is alive).
    :param extra: the broker's own counters by name (the default plugin reports ``notifications``).
    """

    name: str
    length: int
    scheduled: int
    dead: int
    processing: dict[str, tuple[bytes, bool]] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)


class Admin(abc.ABC):
    """Inspection and operator actions on one queue and its dead letters."""

    @abc.abstractmethod
    def info(self) -> QueueInfo:
        """A snapshot for monitoring."""

    @abc.abstractmethod
    def discover_queues(self) -> list[str]:
        """Names of the queues this broker holds data for, sorted (an empty queue may leave no trace)."""

    @abc.abstractmethod
    def dead_letters(self, start: int = 0, stop: int = -1) -> list[bytes]:
        """Dead-letter entries, newest first, from index ``start`` to ``stop`` inclusive."""

    @abc.abstractmethod
    def remove_dead_letter(self, entry: bytes, requeue_task: bytes | None = None) -> bool:
        """Remove one dead-letter entry; with ``requeue_task``, atomically enqueue it. False if gone."""

    @abc.abstractmethod
    def purge_dead_letters(self) -> int:
        """Delete every dead-letter entry; return how many there were."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete everything this queue holds (tests and ``delayed`` tooling)."""
