"""A test-only broker plugin: the real RedisBroker (same Lua scripts) on fakeredis with Lua."""

from __future__ import annotations

import fakeredis

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry
from delayed_redis.broker import RedisBroker


class FakeRedisBroker(RedisBroker):
    """RedisBroker on a fakeredis server; queues of one URL share one fake server."""

    @classmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> FakeRedisBroker:
        client = shared.get(f"fake-client:{url}")
        if client is None:
            server = SERVERS.setdefault(url, fakeredis.FakeServer())
            client = shared[f"fake-client:{url}"] = fakeredis.FakeRedis(server=server)
        return cls(name, client, direct=False)


#: one FakeServer per fakeredis:// URL, so tests can open extra clients on the same data
SERVERS: dict[str, fakeredis.FakeServer] = {}


class FakeBrokerPlugin:
    """Registers ``fakeredis`` as a broker, picked by ``fakeredis://`` URLs."""

    @hookimpl
    def delayed_register_components(self, registry: ComponentRegistry) -> None:
        registry.add_broker("fakeredis", FakeRedisBroker, schemes=("fakeredis",))


def fake_client(url: str) -> fakeredis.FakeRedis:
    """A client on the fake server behind ``url``, for assertions."""
    return fakeredis.FakeRedis(server=SERVERS.setdefault(url, fakeredis.FakeServer()))
