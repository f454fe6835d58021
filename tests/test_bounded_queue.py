"""Bounded queues: ``app.queue(name, max_length=N)`` refuses work past N (QueueFull), atomically."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from delayed_core import ConfigError, Delayed, PyTask, QueueFull
from tests.conftest import Backend
from tests.support.cli import delayed
from tests.support.fake_broker import FakeBrokerPlugin, fake_client


def task(n: int) -> PyTask:
    return PyTask("tests.worker_tasks:add", (n, 1), {})


@pytest.fixture(params=["memory", "fake", "real"])
def app(request: pytest.FixtureRequest) -> Delayed:
    """An app on each broker that can bound a queue."""
    if request.param == "memory":
        return Delayed(f"memory://bounded-{id(request)}", load_entry_points=False)
    if request.param == "fake":
        url = f"fakeredis://bounded-{id(request)}"
        fake_client(url).flushall()
        return Delayed(url, broker="fakeredis", plugins=(FakeBrokerPlugin(),), load_entry_points=False)
    backend: Backend = request.getfixturevalue("real_backend")
    return backend.app()


def test_full_queue_raises_and_adds_nothing(app: Delayed) -> None:
    q = app.queue("emails", max_length=3)
    for n in range(3):
        q.enqueue(task(n))
    with pytest.raises(QueueFull, match=r"queue 'emails' is full \(max_length=3\)"):
        q.enqueue(task(9))
    assert len(q) == 3
    info = app.broker("emails").info()
    assert (info.length, info.extra["notifications"], info.max_length) == (3, 3, 3)


def test_enqueue_many_is_all_or_nothing(app: Delayed) -> None:
    q = app.queue("emails", max_length=5)
    q.enqueue_many([task(n) for n in range(3)])
    with pytest.raises(QueueFull):
        q.enqueue_many([task(n) for n in range(3)])  # 3 + 3 > 5: none of the three goes in
    assert len(q) == 3
    q.enqueue_many([task(n) for n in range(2)])      # 3 + 2 = 5 fits exactly
    assert len(q) == 5
    with pytest.raises(QueueFull, match="a batch of 6 tasks cannot fit under max_length=5"):
        app.queue("other", max_length=5).enqueue_many([task(n) for n in range(6)], block=10)


def test_block_waits_then_raises(app: Delayed) -> None:
    q = app.queue("emails", max_length=1)
    q.enqueue(task(0))
    started = time.monotonic()
    with pytest.raises(QueueFull, match=r"after waiting 0\.5 s"):
        q.enqueue(task(1), block=0.5)
    assert 0.5 <= time.monotonic() - started < 10  # it gave up (the upper bound only rules out a hang)
    assert len(q) == 1


def test_block_succeeds_when_a_worker_makes_room(app: Delayed) -> None:
    q = app.queue("emails", max_length=1)
    q.enqueue(task(0))
    broker = app.broker("emails")

    def consume() -> None:
        time.sleep(0.3)
        assert broker.dequeue("consumer", 1.0) is not None

    consumer = threading.Thread(target=consume)
    consumer.start()
    started = time.monotonic()
    q.enqueue(task(1), block=5)
    waited = time.monotonic() - started
    consumer.join()
    assert 0.25 <= waited < 5  # it waited for the room and took it before its 5 s were up
    assert len(q) == 1


def test_scheduled_tasks_are_not_counted_nor_refused(app: Delayed) -> None:
    q = app.queue("emails", max_length=1)
    q.enqueue(task(0))
    q.enqueue(task(1), delay=60)
    assert len(q) == 1 and app.broker("emails").info().scheduled == 1


def test_unbounded_by_default(app: Delayed) -> None:
    q = app.queue("emails")
    assert q.max_length is None
    q.enqueue_many([task(n) for n in range(50)])
    assert len(q) == 50 and app.broker("emails").info().max_length is None


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True])
def test_bad_bound_is_a_config_error(bad: object) -> None:
    app = Delayed("memory://bad-bound", load_entry_points=False)
    with pytest.raises(ConfigError, match="max_length must be an int >= 0"):
        app.queue("emails", max_length=bad)  # type: ignore[arg-type]


def test_per_queue_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "delayed.toml").write_text("[queues.emails]\nmax_length = 2\n")
    monkeypatch.chdir(tmp_path)
    app = Delayed("memory://per-queue", load_entry_points=False)
    assert app.queue("emails").max_length == 2
    assert app.queue("other").max_length is None
    assert app.queue("emails", max_length=0).max_length is None  # explicit 0: unbounded


def test_concurrent_producers_never_pass_the_bound(real_backend: Backend) -> None:
    app = real_backend.app()
    accepted: list[int] = []
    lock = threading.Lock()

    def produce() -> None:
        q = app.queue("emails", max_length=100)
        for n in range(50):
            try:
                q.enqueue(task(n))
            except QueueFull:
                continue
            with lock:
                accepted.append(n)

    threads = [threading.Thread(target=produce) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(accepted) == 100
    assert real_backend.client.llen("emails") == 100 and real_backend.client.llen("emails_noti") == 100


def test_delayed_info_shows_the_bound(real_backend: Backend, tmp_path: Path) -> None:
    app = real_backend.app()
    q = app.queue("emails", max_length=8)
    q.enqueue_many([task(n) for n in range(6)])
    result = delayed("info", "--broker", real_backend.url, "--queue", "emails", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "queue emails: 6 waiting of max 8 (75% full)" in result.stdout
    result = delayed("info", "--broker", real_backend.url, "--queue", "emails", "--json", cwd=tmp_path)
    assert '"max_length": 8' in result.stdout


def test_delayed_info_shows_the_bound_of_the_setting(real_backend: Backend, tmp_path: Path) -> None:
    """Before any bounded enqueue recorded a bound, info shows the queue's max_length setting."""
    (tmp_path / "delayed.toml").write_text("[queues.emails]\nmax_length = 4\n")
    real_backend.client.rpush("emails", b"x")
    real_backend.client.rpush("emails_noti", b"1")
    result = delayed("info", "--broker", real_backend.url, "--queue", "emails", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "queue emails: 1 waiting of max 4 (25% full)" in result.stdout
