"""The liveness role of a broker: which slot ids belong to a running process."""

from __future__ import annotations

import abc
from collections.abc import Iterable


class Liveness(abc.ABC):
    """Slot ids with a time to live. A task held by an id whose liveness ran out is lost work, which the
    broker's :class:`~delayed_core.interfaces.Sweeper` role recovers (at least once)."""

    @abc.abstractmethod
    def claim_worker_id(self, worker_id: str, ttl: float) -> bool:
        """Mark ``worker_id`` alive for ``ttl`` seconds if no one holds that id; False if taken."""

    @abc.abstractmethod
    def keep_alive(self, worker_ids: Iterable[str], ttl: float) -> None:
        """Refresh the liveness of all ``worker_ids`` for ``ttl`` seconds, in one round trip."""

    @abc.abstractmethod
    def go_offline(self, worker_ids: Iterable[str]) -> None:
        """Mark ``worker_ids`` dead at once (a clean stop)."""
