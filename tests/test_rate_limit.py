"""Global rate limits: ``@app.task(rate_limit="20/s")`` spaces the starts of a function across every
worker of every process; a task that comes early waits in the scheduled set, never in a slot."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from delayed_core import ConfigError, Delayed, PyTask
from delayed_core.rate_limit import limit_key, parse_rate_limit
from tests.chaos.processes import poll
from tests.conftest import Backend
from tests.support.cli import DELAYED, user_environment


@pytest.mark.parametrize(("text", "interval"), [("20/s", 0.05), ("100/m", 0.6), ("2/h", 1800.0), (" 3 / s ", 1 / 3)])
def test_parse(text: str, interval: float) -> None:
    limit = parse_rate_limit(text)
    assert limit is not None and limit.interval == pytest.approx(interval)


@pytest.mark.parametrize("bad", ["20", "0/s", "-1/s", "20/d", "x/m", "", 20])
def test_bad_limit_fails_at_decoration(bad: object) -> None:
    app = Delayed("memory://rl-bad", load_entry_points=False)
    with pytest.raises(ConfigError, match=r"rate_limit must look like '100/m'"):
        app.task(rate_limit=bad)(print)  # type: ignore[arg-type]


def throttle_all(app: Delayed, count: int, interval: float) -> list[float]:
    """Hold ``count`` tasks one after the other and throttle each: the waits the broker answers."""
    broker = app.broker("rl")
    for n in range(count):
        broker.enqueue([f"task-{n}".encode()])
    waits = []
    for n in range(count):
        raw = broker.dequeue(f"w{n}", 1.0)
        assert raw is not None
        waits.append(broker.throttle(f"w{n}", raw, limit_key("m:f"), interval))  # type: ignore[attr-defined]
    return waits


@pytest.mark.parametrize("kind", ["memory", "real"])
def test_throttle_reserves_evenly_spaced_starts(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "memory":
        app = Delayed("memory://rl-spacing", load_entry_points=False)
    else:
        app = request.getfixturevalue("real_backend").app()
    waits = throttle_all(app, 5, 0.2)
    assert waits[0] == 0.0
    # Each early task got its own start, one interval after the previous one (a little less: time passed).
    for n in range(1, 5):
        assert 0.2 * n - 0.1 <= waits[n] <= 0.2 * n + 0.01, waits
    info = app.broker("rl").info()
    # the first task runs (still held); the four early ones wait in the scheduled set, held by no one
    assert info.scheduled == 4 and list(info.processing) == ["w0"] and info.length == 0


def test_put_aside_task_starts_on_its_reservation(real_backend: Backend) -> None:
    app = real_backend.app()
    broker = app.broker("rl")
    throttle_all(app, 2, 0.3)
    time.sleep(0.35)
    assert broker.promote_and_peek()[0] == 1
    raw = broker.dequeue("again", 1.0)
    # It comes back after its reserved time: it starts without taking another start time ...
    assert broker.throttle("again", raw, limit_key("m:f"), 0.3) == 0.0  # type: ignore[attr-defined]
    assert not real_backend.client.exists(limit_key("m:f") + ":reserved")
    # ... so the next free start is still one interval after its reservation (0.6 s), not now.
    broker.enqueue([b"late"])
    raw = broker.dequeue("late", 1.0)
    assert 0.1 <= broker.throttle("late", raw, limit_key("m:f"), 0.3) <= 0.25  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefetch", [1, 4])
def test_runner_puts_early_tasks_aside_in_process(prefetch: int) -> None:
    """The memory broker through a real worker: 6 tasks at 10/s take at least 0.5 s, each runs once (also
    through a slot that prefetches them)."""
    app = Delayed(f"memory://rl-worker-{prefetch}", load_entry_points=False, dequeue_timeout=0.1,
                  prefetch=prefetch)
    starts: list[float] = []

    @app.task(rate_limit="10/s", queue="rl", name="rl:hit")
    def hit(n: int) -> None:
        starts.append(time.monotonic())

    worker = app.worker("rl", slots=2)
    for n in range(6):
        hit.delay(n)
    import threading

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    poll(lambda: len(starts) == 6, 10, message="six starts")
    worker.stop()
    thread.join(10)
    assert starts[-1] - starts[0] >= 0.45
    info = app.broker("rl").info()
    assert (info.scheduled, info.length, info.processing) == (0, 0, {})


TASKS = textwrap.dedent("""
    import os, time
    import redis
    from delayed_core import Delayed

    app = Delayed()
    record = redis.Redis.from_url(os.environ["DELAYED_BROKER_URL"])

    @app.task(rate_limit="20/s")
    def hit(n):
        record.rpush("starts", f"{n} {time.time():.6f}")
""")


def test_200_tasks_at_20_per_second_on_two_worker_processes(real_backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "limited.py").write_text(TASKS)
    env = user_environment({"DELAYED_BROKER_URL": real_backend.url, "PYTHONPATH": str(tmp_path)})
    client = real_backend.client
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [subprocess.Popen([DELAYED, "worker", "--import", "limited", "--slots", "2",
                                 "--dequeue-timeout", "1"], cwd=tmp_path, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT) for log in logs]
    try:
        poll(lambda: client.zcard("default_workers") == 4, 20, message="four slots registered")
        app = real_backend.app()
        started = time.time()
        app.queue("default").enqueue_many([PyTask("limited:hit", (n,), {}) for n in range(200)])
        poll(lambda: client.llen("starts") >= 200, 30, interval=0.1, message="200 starts")
        finished = time.time()
        time.sleep(0.5)  # a duplicate start would show up here
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker, log in zip(workers, logs, strict=True):
            assert worker.wait(20) == 0, log.read_text()[-2000:]
    runs = [entry.decode().split() for entry in client.lrange("starts", 0, -1)]
    numbers = sorted(int(n) for n, _ in runs)
    assert numbers == list(range(200)), "a task was lost or ran twice"
    times = sorted(float(t) for _, t in runs)
    elapsed = finished - started
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    print(f"\n200 tasks at 20/s on 2x2 slots: {elapsed:.2f} s from enqueue to the last start; first start "
          f"{times[0] - started:.3f} s after enqueue, last {times[-1] - started:.2f} s; busiest second "
          f"{busiest} starts")
    assert 9.5 <= elapsed <= 20.0  # never faster than the limit; the upper bound only rules out a stall
    # The limiter grants starts 50 ms apart on the server's clock; these are the times the functions ran,
    # each a little after its grant. A start the busy 2-core machine delays by 100-200 ms lands among the
    # next second's (23 seen under a load of 3): the bound allows that jitter, the elapsed time above
    # bounds the average rate.
    assert busiest <= 25
    assert client.llen("default") == 0 and client.zcard("default_scheduled") == 0


def test_limits_above_1000_per_second_do_not_park_tasks_that_are_on_time(real_backend: Backend) -> None:
    """Regression: the script read the server clock in whole milliseconds, so two starts within one
    millisecond of a 100000/s limit parked the second one although 10 us had long passed."""
    app = real_backend.app()
    broker = app.broker("rl")
    parked = 0
    for n in range(20):
        broker.enqueue([f"fast-{n}".encode()])
        raw = broker.dequeue("w", 1.0)
        parked += broker.throttle("w", raw, limit_key("m:fast"), 0.00001) > 0  # type: ignore[attr-defined]
        broker.release("w")
        time.sleep(0.0002)
    assert parked == 0
