"""Scheduled tasks follow the Redis server's clock, not the worker's (issue 10, item 6).

The worker runs as a ``delayed worker`` subprocess whose ``time.time`` is shifted by a ``sitecustomize``
module (pure Python, no libfaketime). Redis, the producer (this test) and the measurement share the real
clock: a task due in 2 s must run no earlier than 2 s after it was scheduled, and soon after.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from tests.chaos.processes import ROOT, TASKS_MODULE, CliProcess, poll, worker_args
from tests.conftest import Backend
from tests.support.two_second_retry import DELAY

pytestmark = pytest.mark.real_redis
SKEWED_CLOCK = '''
import os
import time

_offset = float(os.environ.get("FAKE_CLOCK_OFFSET", "0"))
if _offset:
    _real_time = time.time
    time.time = lambda: _real_time() + _offset
'''


def skewed_worker(backend: Backend, tmp_path: Path, offset: float) -> CliProcess:
    """A worker whose clock is ``offset`` seconds off (positive: ahead)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SKEWED_CLOCK)
    env = {"FAKE_CLOCK_OFFSET": str(offset), "CHAOS_REDIS_URL": backend.url,
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    # Keep-alives (which also poll for due tasks) every 5 s: the 2 s wait must come from the announcement,
    # read with the clock offset the worker measured, not from a poll.
    worker = CliProcess(worker_args(backend.url, "clock", keep_alive_timeout=15, keep_alive_interval=5,
                                    extra=["--plugin", "tests.support.two_second_retry"]), tmp_path, env)
    worker.wait_for_log("worker serving queue 'clock'", 15)
    return worker


@pytest.mark.parametrize("offset", [120.0, -20.0], ids=["worker-ahead", "worker-behind"])
@pytest.mark.parametrize("how", ["delay", "retry"])
def test_a_scheduled_task_runs_at_its_due_time_whatever_the_workers_clock(
        real_backend: Backend, tmp_path: Path, offset: float, how: str) -> None:
    worker = skewed_worker(real_backend, tmp_path, offset)
    ran = real_backend.client
    try:
        queue = Delayed(real_backend.url, load_entry_points=False).queue("clock")
        scheduled_at = time.time()
        if how == "delay":
            queue.enqueue(PyTask(f"{TASKS_MODULE}:record", [1]), delay=DELAY)
        else:
            # A retry is scheduled by the (skewed) worker itself: it fails once, asking for DELAY s.
            queue.enqueue(PyTask(f"{TASKS_MODULE}:fail_once_then_record", [1]))
            poll(lambda: ran.llen("attempts") == 1, 10, message="the first attempt")
            scheduled_at = time.time()
        poll(lambda: ran.llen("ran") == 1, DELAY + 10, interval=0.02, message="the run")
        elapsed = time.time() - scheduled_at
    finally:
        worker.kill()
    # Before the fix: 120 s ahead ran it at once; 20 s behind ran it 20 s late.
    assert DELAY - 0.05 <= elapsed <= DELAY + 1.5, elapsed
