"""The broker contract suite (delayed_core.testing.contract) on a real three-master Redis Cluster, in the
cluster key layout (redis+cluster:// URL). Task handles are not offered in that layout: their tests skip."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from delayed_core import Delayed
from delayed_core.interfaces import Broker
from delayed_core.testing.contract import *  # noqa: F403 - the contract's tests, collected here
from tests.support.redis_cluster import LocalCluster, flush


class _ClusterFactory:
    def __init__(self, app: Delayed) -> None:
        self.app = app
        self.lacks: frozenset[str] = frozenset()

    def __call__(self, name: str) -> Broker:
        return self.app.broker(name)


@pytest.fixture
def broker_factory(redis_cluster: LocalCluster, request: pytest.FixtureRequest) -> Callable[[str], Broker]:
    """Brokers of a fresh app on the emptied cluster."""
    flush(redis_cluster)
    factory = _ClusterFactory(Delayed(redis_cluster.url, load_entry_points=False))
    request.addfinalizer(factory.app.close)
    return factory
