"""What one live refresh of the dashboard costs Redis, counted with INFO commandstats on a real
redis-server: the figures docs/dashboard.md gives. Run with ``-s`` to see them printed.

The cost must not grow with the length of a queue: a queue of 20,000 tasks costs what a queue of 1 does.
"""

from __future__ import annotations

import time

import redis
from starlette.testclient import TestClient

from delayed_core import Delayed, PyTask
from delayed_dashboard import create_app
from tests.conftest import Backend

QUEUES = ("emails", "reports")
SLOTS = 4  # registered worker ids per queue


def commands(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """command -> (calls, usec) since the last CONFIG RESETSTAT, without the measuring commands."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"])) for name, value in stats.items()
            if not name.startswith(("cmdstat_info", "cmdstat_config"))}


def refresh_cost(backend: Backend, client: TestClient, path: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """(commands, usec, per command) of one live refresh of ``path``, after a warm-up refresh (which
    discovers the queues: SCAN runs at most every 30 s)."""
    assert client.get(path, headers={"X-Fragment": "1"}).status_code == 200
    backend.client.config_resetstat()
    assert client.get(path, headers={"X-Fragment": "1"}).status_code == 200
    stats = commands(backend.client)
    return sum(calls for calls, _ in stats.values()), sum(usec for _, usec in stats.values()), stats


def fill(app: Delayed, waiting: int, first_id: int = 0) -> None:
    """``waiting`` tasks in each queue, SLOTS more registered workers, one of which holds a task."""
    task = app.serializer.dumps(PyTask("pkg:f", [1]))
    for queue in QUEUES:
        broker = app.broker(queue)
        broker.enqueue([task] * waiting)
        ids = [f"{queue[:4]}{n:028x}" for n in range(first_id, first_id + SLOTS)]
        for worker_id in ids:
            assert broker.claim_worker_id(worker_id, 60)
        broker.announce_workers(ids, {"host": "h", "pid": 1})
        assert broker.dequeue(ids[0], 1) == task  # one held task per queue


def test_a_refresh_costs_a_fixed_number_of_commands(real_backend: Backend) -> None:
    app = real_backend.app()
    fill(app, waiting=1)
    client = TestClient(create_app(app, token="t"))
    total, usec, stats = refresh_cost(real_backend, client, "/")
    # Per queue: LLEN x3, ZCARD, HGETALL, ZRANGE (info), EXISTS per held or registered id, HGETALL
    # (throughput). The held task's holder is also registered, so it is checked twice.
    per_queue = 6 + (1 + SLOTS) + 1
    assert total == len(QUEUES) * per_queue, stats
    assert {name for name in stats} == {"llen", "zcard", "hgetall", "zrange", "exists"}
    print(f"\noverview refresh, {len(QUEUES)} queues x {SLOTS} workers: {total} commands, {usec} us of Redis time "
          f"= {usec / 2e6:.4%} of one Redis core at one refresh per 2 s")

    # Redis's own CPU time, I/O and parsing included (commandstats counts execution only), over 200 refreshes.
    cpu = real_backend.client.info("cpu")
    before = cpu["used_cpu_sys"] + cpu["used_cpu_user"]
    for _ in range(200):
        client.get("/", headers={"X-Fragment": "1"})
    cpu = real_backend.client.info("cpu")
    per_refresh = (cpu["used_cpu_sys"] + cpu["used_cpu_user"] - before) / 200
    print(f"Redis CPU per overview refresh, I/O included: {per_refresh * 1e6:.0f} us "
          f"= {per_refresh / 2:.4%} of one core at one refresh per 2 s")

    for path in ("/workers", "/scheduled", "/dead?queue=emails"):
        page_total, page_usec, _ = refresh_cost(real_backend, client, path)
        print(f"{path} refresh: {page_total} commands, {page_usec} us")


def test_the_cost_does_not_grow_with_the_queues(real_backend: Backend) -> None:
    app = real_backend.app()
    fill(app, waiting=1)
    client = TestClient(create_app(app, token="t"))
    small, _, small_stats = refresh_cost(real_backend, client, "/")
    fill(app, waiting=20000, first_id=SLOTS)
    for queue in QUEUES:
        app.broker(queue).schedule([b"x"] * 5000, due=time.time() + 3600)
        app.broker(queue).dead_letter(None, b'{"task":"","reason":"failed"}')
    large, _, large_stats = refresh_cost(real_backend, client, "/")
    # Same commands; only the EXISTS calls grow, with the SLOTS more registered ids (one more holder).
    assert large == small + len(QUEUES) * (SLOTS + 1), (small_stats, large_stats)
    assert {name: calls for name, (calls, _) in large_stats.items() if name != "exists"} == \
        {name: calls for name, (calls, _) in small_stats.items() if name != "exists"}
