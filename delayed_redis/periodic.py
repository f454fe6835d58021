"""PeriodicStore on Redis: one hash per schedule, a set of their names, and the claim script
(``lua/periodic_claim.lua``). Mixed into :class:`~delayed_redis.broker.RedisBroker`.

Round trips: one per schedule at a process's start, one per tick and process (the claim, won or lost),
one per finished run of a periodic task (its outcome).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from delayed_core.interfaces import PeriodicStore

from . import scripts
from .connection import unavailable_as_broker_error
from .keys import QueueKeys


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisPeriodicStore(PeriodicStore):
    """:class:`PeriodicStore` for Redis."""

    # Provided by RedisBroker.
    keys: QueueKeys
    client: redis.Redis

    def periodic_start(self, name: str, now: str, facts: Mapping[str, str]) -> str:
        """HSETNX the last tick, HSET the facts, SADD the name, HGET the last tick: one MULTI/EXEC."""
        key = self.keys.periodic_record(name)
        with unavailable_as_broker_error(), self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "last_tick", now).hset(key, mapping=dict(facts)).sadd(self.keys.periodic, name)
            pipe.hget(key, "last_tick")
            return _text(pipe.execute()[3])

    def periodic_claim(self, name: str, expected: str, last: str, tasks: Sequence[bytes],
                       facts: Mapping[str, str]) -> tuple[bool, str]:
        """The periodic_claim script: 1 round trip."""
        pairs = [item for field, value in facts.items() for item in (field, value)]
        keys = (self.keys.periodic_record(name), self.keys.periodic, self.keys.queue, self.keys.notifications)
        with unavailable_as_broker_error():
            claimed, stored = scripts.PERIODIC_CLAIM(self.client.execute_command, keys,
                                                     (name, expected, last, len(facts), *pairs, *tasks))
        return bool(claimed), _text(stored)

    def periodic_note(self, name: str, facts: Mapping[str, str]) -> None:
        """HSET the facts if the record exists (a script-free check-and-set is not needed: the record is
        only ever deleted by hand)."""
        key = self.keys.periodic_record(name)
        with unavailable_as_broker_error():
            if self.client.exists(key):
                self.client.hset(key, mapping=dict(facts))

    def periodic_records(self) -> dict[str, dict[str, str]]:
        """SMEMBERS, then one HGETALL per schedule in one pipeline."""
        with unavailable_as_broker_error():
            names = sorted(_text(name) for name in self.client.smembers(self.keys.periodic))
            with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self.keys.periodic_record(name))
                records = pipe.execute()
        return {name: {_text(k): _text(v) for k, v in record.items()}
                for name, record in zip(names, records, strict=True) if record}
