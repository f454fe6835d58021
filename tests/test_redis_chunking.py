"""The sweep and promote scripts work in bounded calls, each atomic (docs/benchmarks.md: no script call may
block Redis for long): a sweep or promotion bigger than one call's budget needs several calls, gives
the same end state as one unbounded call, and a sweeper stopped between two calls leaves every task in
a consistent place. Budgets are made tiny here so that a few entries need many calls."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import pytest

import delayed_redis.sweeper as sweeper_module
from delayed_core import Delayed
from delayed_redis import scripts
from tests.conftest import Backend
from tests.support.redis_server import RedisServer

Q = "q"
NOTI, PROCESSING, WORKERS, SCHEDULED = f"{Q}_noti", f"{Q}_processing", f"{Q}_workers", f"{Q}_scheduled"


@pytest.fixture
def tiny_budgets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Budgets of 3 held entries and 5 notifications per sweep call, 4 tasks per promote call; the list
    returned counts the sweep script's calls (the registry's budget, 500 a call, is the script's own)."""
    monkeypatch.setattr(sweeper_module, "SWEEP_BUDGET", 3)
    monkeypatch.setattr(sweeper_module, "FIX_BUDGET", 5)
    monkeypatch.setattr(sweeper_module, "PROMOTE_LIMIT", 4)
    calls = [0]
    original = scripts.SWEEP

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(scripts, "SWEEP", counting)
    return calls


def app_of(backend: Backend) -> Any:
    # fakeredis's Lua lacks redis.sha1hex, which the poison cap needs: the cap is off there.
    return backend.app(max_recoveries=0 if backend.name == "fake" else 5)


def test_a_sweep_in_many_calls_requeues_exactly_the_dead_workers_tasks(backend: Backend,
                                                                      tiny_budgets: list[int]) -> None:
    app = app_of(backend)
    # 1200 entries: past Redis's listpack size for hashes (512), which HSCAN returns whole (the sweeper
    # cuts such a step into calls of the budget all the same)
    live = {f"live-{i}": f"running-{i}".encode() for i in range(600)}
    dead = {f"dead-{i}": f"lost-{i}".encode() for i in range(600)}
    backend.client.mset(dict.fromkeys(live, "1"))  # live (no TTL needed for the test)
    backend.client.hset(PROCESSING, mapping={**live, **dead})
    backend.client.rpush(Q, b"waiting")  # and its notification is missing: the sweep adds it
    (report,) = app.sweeper([Q]).sweep_once()
    assert tiny_budgets[0] >= 1200 // 3  # at most 3 entries per call
    assert report.requeued == 600 and report.poisoned == 0
    assert sorted(backend.client.lrange(Q, 0, -1)) == sorted([b"waiting", *dead.values()])
    assert backend.client.llen(NOTI) == 601
    assert backend.client.hgetall(PROCESSING) == {key.encode(): value for key, value in live.items()}


def test_a_sweeper_stopped_between_calls_leaves_nothing_inconsistent(backend: Backend) -> None:
    """One call of the script alone (a sweeper killed after it): the tasks it requeued already have their
    notifications; the entries it was not given are still held; a full sweep then finishes. An entry
    listed but released meanwhile is left alone."""
    app = app_of(backend)
    dead = {f"dead-{i}": f"lost-{i}".encode() for i in range(30)}
    backend.client.hset(PROCESSING, mapping=dead)
    keys = (Q, NOTI, PROCESSING, f"{Q}_poison", f"{Q}_recoveries", WORKERS, f"{Q}_dead")
    listed = [f"dead-{i}" for i in range(10)] + ["released-meanwhile"]
    moved, poisoned, fixed, skipped, more, poison = scripts.SWEEP(
        backend.client.execute_command, keys, (0, 0, 10, 100, "", *listed))
    assert (moved, poisoned, fixed, skipped, more, poison) == (10, 0, 0, [], 0, [])
    assert backend.client.llen(Q) == backend.client.llen(NOTI) == 10
    assert backend.client.hlen(PROCESSING) == 20
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 20
    assert sorted(backend.client.lrange(Q, 0, -1)) == sorted(dead.values())
    assert backend.client.llen(NOTI) == 30 and backend.client.hlen(PROCESSING) == 0


@pytest.mark.parametrize(("tasks", "notifications"), [(23, 0), (0, 17), (12, 30)])
def test_a_notification_gap_larger_than_one_calls_budget_is_closed_in_one_sweep(
        backend: Backend, tiny_budgets: list[int], tasks: int, notifications: int) -> None:
    app = app_of(backend)
    if tasks:
        backend.client.rpush(Q, *(b"t%d" % i for i in range(tasks)))
    if notifications:
        backend.client.rpush(NOTI, *(b"1",) * notifications)
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.extra["notifications"] == tasks - notifications
    assert backend.client.llen(NOTI) == tasks
    assert tiny_budgets[0] == -(-abs(tasks - notifications) // 5)  # 5 notifications per call


def test_stale_registry_entries_are_forgotten_in_bounded_calls(backend: Backend, tiny_budgets: list[int]) -> None:
    app = app_of(backend)
    old = (time.time() - sweeper_module.WORKER_REGISTRY_TTL - 60) * 1000
    backend.client.zadd(WORKERS, {f"gone-{i}": old for i in range(1100)})
    backend.client.zadd(WORKERS, {"fresh": time.time() * 1000})
    app.sweeper([Q]).sweep_once()
    assert backend.client.zrange(WORKERS, 0, -1) == [b"fresh"]
    assert tiny_budgets[0] == 3  # 500 stale entries per call


def test_a_poison_task_found_in_a_later_call_is_returned_at_the_end(real_backend: Backend,
                                                                   tiny_budgets: list[int]) -> None:
    """(Real server only: the poison cap hashes tasks with redis.sha1hex.)"""
    app = real_backend.app(max_recoveries=1)
    client = real_backend.client
    client.hset(f"{Q}_recoveries", scripts_sha1(b"poison"), 1)  # recovered once already
    client.hset(PROCESSING, mapping={f"dead-{i}": b"ok-%d" % i for i in range(8)})
    client.hset(PROCESSING, "dead-poison", b"poison")
    (report,) = app.sweeper([Q]).sweep_once()
    assert (report.requeued, report.poisoned) == (8, 1)
    assert client.llen(f"{Q}_poison") == 0 and len(client.lrange(f"{Q}_dead", 0, -1)) == 1


def scripts_sha1(task: bytes) -> str:
    """The poison counter's field of ``task`` (sweep.lua: redis.sha1hex of its bytes)."""
    return hashlib.sha1(task).hexdigest()


def test_promotion_in_many_calls_moves_every_due_task_once_in_due_order(backend: Backend,
                                                                         tiny_budgets: list[int]) -> None:
    broker = backend.app().broker(Q)
    now = time.time()
    members = {f"{i:016x}".encode() + b"due-%02d" % i: (now - 100 + i) * 1000 for i in range(10)}
    members.update({uuid.uuid4().hex[:16].encode() + b"later": (now + 3600) * 1000})
    backend.client.zadd(SCHEDULED, members)
    moved, next_due = broker.promote_and_peek(now=now)
    assert moved == 10
    assert backend.client.lrange(Q, 0, -1) == [b"due-%02d" % i for i in range(10)]
    assert backend.client.llen(NOTI) == 10
    assert backend.client.zcard(SCHEDULED) == 1
    assert next_due is not None and 3500 < next_due - time.time() < 3700


def test_a_chunked_sweep_in_the_cluster_layout_reads_each_chunks_liveness_keys(
        real_redis: RedisServer, tiny_budgets: list[int]) -> None:
    """key_layout = "cluster" on one server: each call declares its chunk's {N}_alive:<id> keys."""
    app = Delayed(real_redis.url, load_entry_points=False, key_layout="cluster", max_recoveries=0)
    keys = app.broker(Q).keys
    client = real_redis.client()
    live = {f"live-{i}": f"running-{i}".encode() for i in range(600)}
    dead = {f"dead-{i}": f"lost-{i}".encode() for i in range(600)}
    client.mset({keys.liveness(worker_id): "1" for worker_id in live})
    client.hset(keys.processing, mapping={**live, **dead})
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 600 and tiny_budgets[0] >= 1200 // 3
    assert sorted(client.lrange(keys.queue, 0, -1)) == sorted(dead.values())
    assert client.llen(keys.notifications) == 600
    assert client.hgetall(keys.processing) == {key.encode(): value for key, value in live.items()}
