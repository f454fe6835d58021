"""The broker contract suite (delayed_core.testing.contract) on the three brokers pydelayed ships or
tests with: the memory broker, the Redis broker on fakeredis, and the Redis broker on a real redis-server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from delayed_core import Delayed
from delayed_core.interfaces import Broker
from delayed_core.testing.contract import *  # noqa: F403 - the contract's tests, collected here
from tests.support.fake_broker import FakeBrokerPlugin
from tests.support.redis_server import RedisServer

_ids = itertools.count()


class _AppFactory:
    """Brokers of one fresh app: ``factory(name)`` is ``app.broker(name)``."""

    def __init__(self, app: Delayed, lacks: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.lacks = lacks

    def __call__(self, name: str) -> Broker:
        return self.app.broker(name)


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def broker_factory(request: pytest.FixtureRequest) -> Callable[[str], Broker]:
    """A factory on an empty backend of each kind."""
    if request.param == "memory":
        app = Delayed(f"memory://contract-{next(_ids)}", load_entry_points=False)
        factory = _AppFactory(app)
    elif request.param == "fakeredis":
        app = Delayed(f"fakeredis://contract-{next(_ids)}", plugins=[FakeBrokerPlugin()], load_entry_points=False)
        # fakeredis's Lua has no redis.sha1hex, which the poison-task cap uses
        factory = _AppFactory(app, frozenset({"poison"}))
    else:
        server: RedisServer = request.getfixturevalue("real_redis")
        factory = _AppFactory(Delayed(server.url, load_entry_points=False))
    request.addfinalizer(factory.app.close)
    return factory
