"""Chaos: workers SIGKILLed at random for 20 s while tasks flow; every task must run at least once."""

from __future__ import annotations

import time

import pytest

from tests.chaos.harness import ChaosRun, ChaosSettings
from tests.chaos.inproc import start_worker_thread, stop_worker_thread
from tests.conftest import Backend
from tests.support.redis_server import RedisServer


def run_and_check(url: str, settings: ChaosSettings, min_kills: int) -> None:
    """Run the chaos; every task ran at least once, and only kills caused duplicates: at most one per kill,
    or a batch per kill with --prefetch (a killed slot re-runs the tasks it finished but had not released)."""
    run = ChaosRun(url, settings)
    report = run.run()
    print(report.summary())
    assert report.enqueued == settings.tasks
    assert report.kills >= min_kills, "the run must really kill workers"
    assert report.lost == [], f"{len(report.lost)} task(s) never ran: {report.lost[:20]}\n{run.diagnose()}"
    assert report.dead_letters == 0
    assert report.duplicates <= report.kills * settings.prefetch


@pytest.mark.slow
@pytest.mark.real_redis
@pytest.mark.timeout(150)
def test_no_task_is_lost_when_workers_are_killed_at_random(real_redis: RedisServer) -> None:
    run_and_check(real_redis.url, ChaosSettings(tasks=2000, workers=3, slots=2, seconds=20, drain_timeout=40), 40)


@pytest.mark.real_redis
@pytest.mark.timeout(90)
def test_no_prefetched_task_is_lost_when_workers_are_killed_at_random(real_redis: RedisServer) -> None:
    """The same with ``--prefetch 8``: a killed worker holds up to 8 tasks per slot, all under live ids
    until it dies, so the sweeper recovers every one. Short enough for every CI run."""
    settings = ChaosSettings(tasks=600, workers=3, slots=1, prefetch=8, seconds=6, kill_gap_ms=(200.0, 700.0),
                             task_sleep_ms=(5.0, 20.0), drain_timeout=30, kill_online_only=True)
    run_and_check(real_redis.url, settings, 3)


@pytest.mark.real_redis
def test_a_live_worker_refreshes_ids_faster_than_they_expire(real_backend: Backend) -> None:
    """Regression: keep-alive ran on a fixed 1 s tick, so a keep_alive_timeout under 1 s let live ids
    expire and the sweeper requeued tasks that were still running (needless duplicates)."""
    app = real_backend.app(keep_alive_timeout=0.6, keep_alive_interval=0.15, dequeue_timeout=0.2, slots=2)
    worker = app.worker("ka")
    thread = start_worker_thread(worker)
    ids = worker.worker_ids
    assert len(ids) == 2
    checks_until = time.monotonic() + 2.0
    while time.monotonic() < checks_until:
        assert real_backend.client.exists(*ids) == 2, "a live worker's id expired"
        time.sleep(0.02)
    stop_worker_thread(worker, thread)
