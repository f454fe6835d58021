"""The broker contract suite (delayed_core.testing.contract) in the cluster key layout: on a real
three-master Redis Cluster (redis+cluster:// URL), and on one plain redis-server with key_layout =
"cluster". The task-tracking tests run too: in this layout a tracker serves its own queue's records."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from delayed_core import Delayed
from delayed_core.interfaces import Broker
from delayed_core.testing.contract import *  # noqa: F403 - the contract's tests, collected here
from tests.support.redis_cluster import LocalCluster, flush
from tests.support.redis_server import RedisServer


class _ClusterFactory:
    def __init__(self, app: Delayed) -> None:
        self.app = app
        self.lacks: frozenset[str] = frozenset()

    def __call__(self, name: str) -> Broker:
        return self.app.broker(name)


@pytest.fixture(params=["cluster", "one-redis"])
def broker_factory(request: pytest.FixtureRequest) -> Callable[[str], Broker]:
    """Brokers of a fresh app on the emptied cluster, or on one emptied redis-server."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        flush(cluster)
        app = Delayed(cluster.url, load_entry_points=False)
    else:
        server: RedisServer = request.getfixturevalue("real_redis")
        app = Delayed(server.url, load_entry_points=False, key_layout="cluster")
        assert app.broker("contract").keys.queue == "{contract}"
    factory = _ClusterFactory(app)
    request.addfinalizer(factory.app.close)
    return factory
