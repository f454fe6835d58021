"""PeriodicStore for the memory broker, with the semantics of ``delayed_redis/lua/periodic_claim.lua``.
Mixed into MemoryBroker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from delayed_core.interfaces import PeriodicStore


class MemoryPeriodicStore(PeriodicStore):
    """:class:`PeriodicStore` over the memory broker's store (one lock makes every call atomic)."""

    store: Any
    _state: Any
    _push: Any

    def periodic_start(self, name: str, now: str, facts: Mapping[str, str]) -> str:
        with self.store.cond:
            record = self.store.periodic.setdefault(name, {"last_tick": now})
            record.update(facts)
            return record["last_tick"]

    def periodic_claim(self, name: str, expected: str, last: str, tasks: Sequence[bytes],
                       facts: Mapping[str, str]) -> tuple[bool, str]:
        with self.store.cond:
            record = self.store.periodic.get(name)
            if record is None or record["last_tick"] != expected:
                return False, "" if record is None else record["last_tick"]
            if tasks:
                self._push(self._state, tasks)
                record["enqueued"] = str(int(record.get("enqueued", "0")) + len(tasks))
            record.update(facts)
            record["last_tick"] = last
            return True, last

    def periodic_note(self, name: str, facts: Mapping[str, str]) -> None:
        with self.store.cond:
            if name in self.store.periodic:
                self.store.periodic[name].update(facts)

    def periodic_records(self) -> dict[str, dict[str, str]]:
        with self.store.cond:
            return {name: dict(record) for name, record in sorted(self.store.periodic.items())}
