"""The ``target`` fixture: apps on each broker a worker test runs on, through the public API only."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import pytest

from delayed_core import Delayed
from delayed_core.interfaces import Broker
from delayed_core.worker import Worker
from tests import worker_tasks
from tests.conftest import Backend
from tests.support.fake_broker import FakeBrokerPlugin, fake_client

_ids = itertools.count()
#: the module of the tasks worker tests run
MODULE = "tests.worker_tasks"


@dataclass
class Target:
    """Where a test's apps keep their queues: the memory broker or a Redis ``Backend``."""

    name: str
    backend: Backend | None = None
    _apps: list[Delayed] = field(default_factory=list)
    _probe: Delayed | None = None

    def broker(self, queue: str = "default") -> Broker:
        """The broker of ``queue`` in one app kept for assertions (no new app, no new pool, per call)."""
        if self._probe is None:
            self._probe = self.app()
        return self._probe.broker(queue)

    def app(self, **settings: object) -> Delayed:
        """A new app on this target; every app of one test sees the same queues."""
        if self.backend is not None:
            return self.backend.app(**settings)
        plugins = tuple(settings.pop("plugins", ()))  # type: ignore[call-overload]
        app = Delayed(f"memory://worker-test-{id(self)}", plugins=plugins, load_entry_points=False, **settings)
        if self._apps:
            # Memory queues live in an app's broker cache; share the first app's, as apps of one Redis
            # URL share the server.
            app._shared = self._apps[0]._shared
        self._apps.append(app)
        return app


@pytest.fixture(name="target", params=["memory", "fake", "real"])
def broker_target(request: pytest.FixtureRequest) -> Target:
    """Each test using it runs three times: on the memory broker, fakeredis and a real redis-server."""
    if request.param == "memory":
        return Target("memory")
    if request.param == "fake":
        url = f"fakeredis://worker-test-{next(_ids)}"
        return Target("fake", Backend("fake", url, fake_client(url), (FakeBrokerPlugin(),), {"broker": "fakeredis"}))
    return Target("real", request.getfixturevalue("real_backend"))


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    """Worker tests start with no recorded calls (autouse in the modules that import it)."""
    worker_tasks.reset()


def drain(where: Target | Backend, queue: str = "default", **settings: object) -> None:
    """Run a burst worker, of an app of its own, until the queue is empty."""
    app = where.app(imports=[MODULE], dequeue_timeout=0.2, **settings)
    app.worker(queue).run(burst=True, install_signals=False)


def start_idle(worker: Worker, slots: int = 1) -> threading.Thread:
    """Run ``worker`` in a daemon thread; return once ``slots`` of its slots are up (5 s at most)."""
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while len(worker.slots) < slots and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread
