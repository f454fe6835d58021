"""Fixtures: a real redis-server per test session, fakeredis, and app factories over both."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from delayed_core import Delayed
from tests.support.fake_broker import FakeBrokerPlugin, fake_client
from tests.support.redis_cluster import redis_cluster  # noqa: F401 - a session fixture for the cluster tests
from tests.support.redis_server import RedisServer, require_redis_server

_fake_ids = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read the developer's DELAYED_* variables or a delayed.toml in the working directory."""
    import os

    for name in list(os.environ):
        if name.startswith("DELAYED_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole session (skipped locally, required in CI)."""
    require_redis_server()
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    """Dedicated redis-servers a test starts with :func:`tests.support.redis_server.start_server` (for
    settings the shared server must not get), removed after the test."""
    require_redis_server()
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.cleanup()


@pytest.fixture
def real_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's redis-server, flushed before each test."""
    redis_server.client().flushall()
    yield redis_server


@dataclass
class Backend:
    """Where an app under test keeps its queues, plus a raw client on the same data for assertions."""

    name: str
    url: str
    client: redis.Redis
    plugins: tuple[object, ...]
    settings: dict[str, object]

    def app(self, **settings: object) -> Delayed:
        """A Delayed app on this backend (no entry points: tests control every plugin)."""
        merged = {**self.settings, **settings}
        plugins = tuple(merged.pop("plugins", ())) + self.plugins  # type: ignore[arg-type]
        return Delayed(self.url, plugins=plugins, load_entry_points=False, **merged)


@pytest.fixture(params=["fake", "real"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each test using it runs twice: on fakeredis (with Lua) and on a real redis-server."""
    if request.param == "fake":
        url = f"fakeredis://test-{next(_fake_ids)}"
        return Backend("fake", url, fake_client(url), (FakeBrokerPlugin(),), {"broker": "fakeredis"})
    server: RedisServer = request.getfixturevalue("real_redis")
    return Backend("real", server.url, server.client(), (), {})


@pytest.fixture
def real_backend(real_redis: RedisServer) -> Backend:
    """The real redis-server only (kill, restart and timing-sensitive tests)."""
    return Backend("real", real_redis.url, real_redis.client(), (), {})


def run_in_thread(target: Callable[[], object]) -> threading.Thread:
    """Start ``target`` in a daemon thread and return the thread."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
