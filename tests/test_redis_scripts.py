"""The Redis broker's scripts: regression tests for the go-delayed / delayed 1.2 bugs of WIRE-FORMAT.md
section 7 that pydelayed fixes, atomicity (one command per operation, seen with MONITOR), and the key
layout (go-delayed's keys plus the documented additive ones, nothing else).

Most tests run twice through the ``backend`` fixture: on fakeredis with Lua and on a real redis-server.
Tests that watch the server (MONITOR), race threads or run a whole worker use the real server only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

import delayed_core.worker as worker_module
from delayed_core.task import PyTask
from delayed_redis.broker import RedisBroker
from tests import interop_funcs
from tests.conftest import Backend

interop_funcs.make_importable()

Q = "q"
NOTI, PROCESSING, DEAD = f"{Q}_noti", f"{Q}_processing", f"{Q}_dead"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
GO_KEYS = {Q, NOTI, PROCESSING}  # plus the root-keyspace worker ids
ADDITIVE_KEYS = {f"{Q}_scheduled", DEAD, f"{Q}_recoveries", f"{Q}_workers", f"{Q}_worker_info", f"{Q}_throughput"}
EDGE_CASES = json.loads((Path(__file__).parent / "fixtures" / "edge_cases.json").read_text())


def broker_of(backend: Backend, **settings: Any) -> RedisBroker:
    broker = backend.app(**settings).broker(Q)
    assert isinstance(broker, RedisBroker)
    return broker


def new_id() -> str:
    return uuid.uuid4().hex


def sweeping_app(backend: Backend, **settings: Any) -> Any:
    """An app for sweep tests. fakeredis's Lua has no ``redis.sha1hex``, which the poison-task cap uses,
    so on fakeredis the cap is off (0); on the real server the default cap (5) is in force."""
    if backend.name == "fake":
        settings.setdefault("max_recoveries", 0)
    return backend.app(**settings)


# -- watching the server -------------------------------------------------------------------------
@contextmanager
def client_commands(url: str) -> Iterator[list[str]]:
    """Collect the names of the commands CLIENTS send while the block runs (MONITOR, script calls and
    connection handshakes left out). The list is filled when the block exits."""
    names: list[str] = []
    watcher = redis.Redis.from_url(url, socket_timeout=10)
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    with watcher.monitor() as monitor:
        yield names
        redis.Redis.from_url(url).echo(sentinel)
        while True:
            seen = monitor.next_command()
            if sentinel in seen["command"]:
                break
            name = seen["command"].split(" ", 1)[0].upper()
            if seen["client_type"] != "lua" and name not in {"HELLO", "CLIENT", "ECHO"}:
                names.append(name)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the requests any redis-py connection writes (a pipeline is one write)."""
    calls = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        calls[0] += 1
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return lambda: calls[0]


# -- section 7, item 4: the dequeue script -------------------------------------------------------
def test_dequeue_with_a_notification_but_an_empty_queue(backend: Backend) -> None:
    """go-delayed's script failed (HSET of Lua false); ours returns None and uses the notification up."""
    broker = broker_of(backend)
    backend.client.rpush(NOTI, "1")
    assert broker.dequeue(new_id(), 0.1) is None
    assert backend.client.llen(NOTI) == 0
    assert backend.client.hlen(PROCESSING) == 0


def test_dequeue_never_overwrites_a_held_task(backend: Backend) -> None:
    """A slot asking again (a lost reply) gets its held task back; the queue keeps the next one."""
    broker = broker_of(backend)
    worker_id = new_id()
    broker.enqueue([b"first"])
    assert broker.dequeue(worker_id, 0.1) == b"first"
    broker.enqueue([b"second"])
    assert broker.dequeue(worker_id, 0.1) == b"first"
    assert backend.client.hget(PROCESSING, worker_id) == b"first"
    assert backend.client.lrange(Q, 0, -1) == [b"second"]
    assert backend.client.llen(NOTI) == 1  # the notification it consumed was given back


# -- section 7, item 5: the sweep script ---------------------------------------------------------
def test_sweep_trims_surplus_notifications(backend: Backend) -> None:
    """0 tasks / 3 notifications: go-delayed returned -3 and kept them; we remove them."""
    app = sweeping_app(backend)
    backend.client.rpush(NOTI, "1", "1", "1")
    (report,) = app.sweeper([Q]).sweep_once()
    assert (report.requeued, report.poisoned, report.extra["notifications"]) == (0, 0, -3)
    assert backend.client.llen(NOTI) == 0


def test_sweep_with_surplus_and_a_dead_worker(backend: Backend) -> None:
    """0/3 plus one dead worker: go-delayed returned -2; we requeue it with exactly one notification."""
    app = sweeping_app(backend)
    backend.client.rpush(NOTI, "1", "1", "1")
    backend.client.hset(PROCESSING, new_id(), b"lost")
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 1 and report.poisoned == 0
    assert backend.client.lrange(Q, 0, -1) == [b"lost"]
    assert backend.client.llen(NOTI) == 1
    assert backend.client.hlen(PROCESSING) == 0


@pytest.mark.parametrize("case", EDGE_CASES["sweeper_unpack_limit"], ids=lambda c: f"{c['queue_len']}+"
                         f"{len(c.get('processing', {}))}dead")
def test_large_notification_deficit_is_fixed_in_one_sweep(backend: Backend, case: dict[str, Any]) -> None:
    """go-delayed failed with 'too many results to unpack' at 8000 and stayed stuck; one sweep fixes it."""
    app = sweeping_app(backend)
    backend.client.rpush(Q, *(b"t%d" % i for i in range(case["queue_len"])))
    if case["noti_len"]:
        backend.client.rpush(NOTI, *(b"1",) * case["noti_len"])
    for worker_id, task in case.get("processing", {}).items():
        backend.client.hset(PROCESSING, worker_id, task)
    dead = len(case.get("processing", {}))
    (report,) = app.sweeper([Q]).sweep_once()
    expected = case["queue_len"] + dead
    assert report.requeued == dead
    assert backend.client.llen(Q) == expected
    assert backend.client.llen(NOTI) == expected
    assert backend.client.hlen(PROCESSING) == 0
    (again,) = app.sweeper([Q]).sweep_once()  # and the next sweep has nothing left to do
    assert (again.requeued, again.extra["notifications"]) == (0, 0)


def test_sweep_requeues_only_dead_workers_tasks_at_the_tail(backend: Backend) -> None:
    app = sweeping_app(backend)
    alive, dead = new_id(), new_id()
    backend.client.set(alive, "1", px=60_000)
    backend.client.hset(PROCESSING, mapping={alive: b"running", dead: b"lost"})
    app.queue(Q).broker.enqueue([b"waiting"])
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 1
    assert backend.client.lrange(Q, 0, -1) == [b"waiting", b"lost"]  # tail, like go-delayed
    assert backend.client.hgetall(PROCESSING) == {alive.encode(): b"running"}
    assert backend.client.llen(NOTI) == 2


def test_a_poison_task_is_dead_lettered_after_max_recoveries(real_backend: Backend) -> None:
    """A task whose worker dies every time is requeued max_recoveries times, then dead-lettered.
    (Real server only: the cap hashes tasks with redis.sha1hex, which fakeredis lacks.)"""
    backend = real_backend
    app = backend.app(max_recoveries=2)
    broker, sweeper = app.broker(Q), app.sweeper([Q])
    broker.enqueue([b"poison"])
    reports = []
    for _ in range(3):
        # A worker takes it and dies: its id was never (or is no longer) alive.
        assert broker.dequeue(new_id(), 0.1) == b"poison"
        (report,) = sweeper.sweep_once()
        reports.append((report.requeued, report.poisoned))
    assert reports == [(1, 0), (1, 0), (0, 1)]
    assert backend.client.llen(Q) == 0 and backend.client.llen(NOTI) == 0
    assert backend.client.hlen(PROCESSING) == 0
    (entry,) = backend.client.lrange(DEAD, 0, -1)
    letter = json.loads(entry)
    assert letter["reason"] == "poison" and letter["task"] == b"poison".hex() and letter["queue"] == Q
    assert letter["attempts"] == 3
    assert backend.client.hlen(f"{Q}_recoveries") == 0  # its counter is dropped with it


# -- enqueue, release_take, requeue --------------------------------------------------------------
def test_enqueue_is_one_script_call(real_backend: Backend, round_trips: Callable[[], int]) -> None:
    queue = real_backend.app().queue(Q)
    queue.enqueue(PyTask("m:f", [0]))  # loads the script (NOSCRIPT, SCRIPT LOAD) once
    before = round_trips()
    queue.enqueue(PyTask("m:f", [1]))
    assert round_trips() - before == 1
    with client_commands(real_backend.url) as names:
        queue.enqueue(PyTask("m:f", [2]))
    assert names == ["EVALSHA"]
    assert real_backend.client.llen(Q) == real_backend.client.llen(NOTI) == 3


def test_enqueue_many_is_one_round_trip(real_backend: Backend, round_trips: Callable[[], int]) -> None:
    queue = real_backend.app().queue(Q)
    tasks = [PyTask("m:f", [i]) for i in range(1000)]
    queue.broker.client.ping()  # connect first: the handshake is not part of the operation
    before = round_trips()
    queue.enqueue_many(tasks)
    assert round_trips() - before == 1
    with client_commands(real_backend.url) as names:
        queue.enqueue_many(tasks)
    assert names == ["MULTI", "RPUSH", "RPUSH", "EXEC"]
    assert real_backend.client.llen(Q) == real_backend.client.llen(NOTI) == 2000


def test_release_take_releases_and_takes_the_next(backend: Backend) -> None:
    broker = broker_of(backend)
    worker_id = new_id()
    broker.enqueue([b"one", b"two"])
    assert broker.dequeue(worker_id, 0.1) == b"one"
    assert broker.release(worker_id, take_next=True) == b"two"
    assert backend.client.hgetall(PROCESSING) == {worker_id.encode(): b"two"}
    assert backend.client.llen(Q) == 0 and backend.client.llen(NOTI) == 0
    assert broker.release(worker_id, take_next=True) is None  # nothing ready: released, nothing taken
    assert backend.client.hlen(PROCESSING) == 0


def test_release_take_is_one_command(real_backend: Backend) -> None:
    broker = broker_of(real_backend)
    worker_id = new_id()
    broker.enqueue([b"one", b"two"])
    broker.dequeue(worker_id, 0.1)
    with client_commands(real_backend.url) as names:
        assert broker.release(worker_id, take_next=True) == b"two"
    assert names == ["EVALSHA"]


def test_requeue_releases_and_puts_back_atomically(backend: Backend) -> None:
    broker = broker_of(backend)
    worker_id = new_id()
    broker.enqueue([b"task", b"other"])
    broker.dequeue(worker_id, 0.1)
    broker.requeue(worker_id, b"task-retry")
    assert backend.client.hlen(PROCESSING) == 0
    assert backend.client.lrange(Q, 0, -1) == [b"other", b"task-retry"]
    assert backend.client.llen(NOTI) == 2
    broker.dequeue(worker_id, 0.1)
    broker.requeue(worker_id, b"handed-back", front=True)
    assert backend.client.lrange(Q, 0, -1) == [b"handed-back", b"task-retry"]
    broker.dequeue(worker_id, 0.1)
    broker.requeue(worker_id, b"later", delay=60)
    assert backend.client.lrange(Q, 0, -1) == [b"task-retry"]
    assert backend.client.zcard(f"{Q}_scheduled") == 1 and backend.client.hlen(PROCESSING) == 0


def test_requeue_is_one_command(real_backend: Backend) -> None:
    broker = broker_of(real_backend)
    worker_id = new_id()
    broker.enqueue([b"task"])
    broker.dequeue(worker_id, 0.1)
    broker.requeue(worker_id, b"task")  # first use: connects and loads the script
    broker.dequeue(worker_id, 0.1)
    with client_commands(real_backend.url) as names:
        broker.requeue(worker_id, b"task")
    assert names == ["EVALSHA"]
    assert real_backend.client.llen(Q) == 1 and real_backend.client.hlen(PROCESSING) == 0


# -- liveness ------------------------------------------------------------------------------------
def test_fractional_keep_alive_timeout(backend: Backend) -> None:
    """go-delayed and delayed 1.2 sent SETEX 1.5, which Redis refuses; we keep milliseconds exact."""
    broker = broker_of(backend, keep_alive_timeout=1.5, keep_alive_interval=0.5)
    worker_id = new_id()
    assert broker.claim_worker_id(worker_id, 1.5)
    assert 1000 < backend.client.pttl(worker_id) <= 1500
    backend.client.pexpire(worker_id, 100)
    broker.keep_alive([worker_id], 1.5)
    assert 1000 < backend.client.pttl(worker_id) <= 1500
    assert backend.client.get(worker_id) == b"1"  # GET answers: go-delayed's sweeper sees it alive


def test_worker_ids_are_hex_and_claimed_with_nx(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = broker_of(backend)
    taken = new_id()
    backend.client.set(taken, "1", px=60_000)
    assert not broker.claim_worker_id(taken, 60)
    assert backend.client.pttl(taken) > 59_000  # the holder's key is untouched
    fresh = new_id()
    offered = iter([taken, fresh])
    monkeypatch.setattr(worker_module, "new_worker_id", lambda: next(offered))
    worker = backend.app().worker(Q)
    assert worker._claim_one(60) == fresh  # the taken id was refused, the next one claimed
    monkeypatch.undo()
    ids = {worker_module.new_worker_id() for _ in range(50)}
    assert len(ids) == 50 and all(HEX_ID.match(i) for i in ids)


# -- scheduled tasks -----------------------------------------------------------------------------
def test_promote_moves_each_due_task_exactly_once_under_a_race(real_backend: Backend) -> None:
    app = real_backend.app()
    broker = app.broker(Q)
    tasks = [b"task-%d" % i for i in range(2500)]
    broker.schedule(tasks, time.time() - 1)
    broker.schedule([b"not-yet"], time.time() + 3600)
    start = threading.Barrier(8)
    moved: list[int] = []

    def promote() -> None:
        own = real_backend.app().broker(Q)  # each thread has its own connection pool
        start.wait()
        moved.append(own.promote_and_peek()[0])

    threads = [threading.Thread(target=promote) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(moved) == len(tasks)
    assert sorted(real_backend.client.lrange(Q, 0, -1)) == sorted(tasks)
    assert real_backend.client.llen(NOTI) == len(tasks)
    assert real_backend.client.zcard(f"{Q}_scheduled") == 1


# -- key layout ----------------------------------------------------------------------------------
def test_key_layout_while_working(real_backend: Backend) -> None:
    """Mid-cycle: go-delayed's three keys, the worker id in the root keyspace, and the additive keys."""
    broker = broker_of(real_backend)
    worker_id = new_id()
    assert broker.claim_worker_id(worker_id, 60)
    broker.enqueue([b"a", b"b"])
    broker.dequeue(worker_id, 0.1)
    broker.schedule([b"later"], time.time() + 60)
    keys = {key.decode() for key in real_backend.client.keys("*")}
    assert keys == GO_KEYS | {worker_id, f"{Q}_scheduled", f"{Q}_workers"}
    assert keys <= GO_KEYS | ADDITIVE_KEYS | {worker_id}


def test_a_full_cycle_leaves_no_keys_behind(real_backend: Backend) -> None:
    """Enqueue, schedule, run, sweep: finished tasks leave only the dashboard's per-minute counters, which
    expire on their own; a refused one adds N_dead."""
    app = real_backend.app(imports=["interop_funcs"], dequeue_timeout=0.1, slots=2)
    queue = app.queue(Q)
    queue.enqueue_many([PyTask("interop_funcs:noop") for _ in range(5)])
    queue.enqueue(PyTask("interop_funcs:noop"), delay=0.05)
    app.broker(Q).promote_and_peek(time.time() + 1)
    app.worker(Q).run(burst=True, install_signals=False)
    app.sweeper([Q]).sweep_once()
    counters = f"{Q}_throughput"
    assert real_backend.client.keys("*") == [counters.encode()]
    assert 0 < real_backend.client.pttl(counters) <= 16 * 60_000
    queue.enqueue(PyTask("os:system", ["true"]))
    app.worker(Q).run(burst=True, install_signals=False)
    app.sweeper([Q]).sweep_once()
    assert {key.decode() for key in real_backend.client.keys("*")} == {DEAD, counters}
