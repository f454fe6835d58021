"""How fast the asyncio executor drains I/O-bound coroutines: ``python bench/asyncio_drain.py``.

Fills a queue with ``--tasks`` tasks that each ``await asyncio.sleep(--sleep)``, then starts
``delayed worker --executor asyncio --slots N --burst`` as a subprocess and times the drain by polling
Redis: from the first task leaving the queue to the moment the queue and ``N_processing`` are both
empty (the worker's interpreter start-up is reported apart). The target (issue 9) is 1,000 tasks of
0.1 s in at most 2 s with 100 slots; the floor is tasks / slots * sleep = 1 s.

Placement as in every benchmark here (:mod:`bench.harness`): the private redis-server on CPU 0, the
worker and this process on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from delayed_core import Delayed, PyTask

QUEUE = "asyncbench"
#: this module's import name, which the worker is told to allow
MODULE = "bench.asyncio_drain"


async def nap(seconds: float) -> None:
    """The benchmark task: wait on the event loop, as an I/O-bound coroutine does."""
    await asyncio.sleep(seconds)


def drain_once(url: str, tasks: int, slots: int, sleep: float) -> tuple[float, float]:
    """One run: (drain seconds from first dequeue to empty, seconds from worker start to its exit)."""
    client = redis.Redis.from_url(url)
    client.flushall()
    app = Delayed(url, queue=QUEUE, load_entry_points=False)
    app.queue().enqueue_many([PyTask(f"{MODULE}:nap", [sleep]) for _ in range(tasks)])
    app.close()
    delayed = str(Path(sys.executable).with_name("delayed"))
    argv = harness.pinned([delayed, "worker", "--broker", url, "--queue", QUEUE, "--executor", "asyncio",
                           "--slots", str(slots), "--import", MODULE, "--burst", "--log-level", "WARNING"],
                          harness.CLIENT_CPU)
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
    launched = time.perf_counter()
    worker = subprocess.Popen(argv, cwd=harness.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first = harness.wait_until(lambda: client.llen(QUEUE) < tasks, 60.0, interval=0.001)
        with client.pipeline(transaction=False) as pipe:
            def drained() -> bool:
                harness.check_alive([worker])
                length, held = pipe.llen(QUEUE).hlen(f"{QUEUE}_processing").execute()
                return int(length) + int(held) == 0
            done = harness.wait_until(drained, 60.0, interval=0.002)
        worker.wait(30)
        exited = time.perf_counter()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    if worker.returncode != 0:
        raise RuntimeError(f"worker exited with {worker.returncode}: {worker.stderr.read().decode()[-1500:]}")
    return done - first, exited - launched


def main(argv: list[str]) -> None:
    """Run the measurement ``--repeat`` times and print every figure and the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > harness.CLIENT_CPU:
        os.sched_setaffinity(0, {harness.CLIENT_CPU})  # this polling process sits with the worker
    server = harness.PinnedRedisServer().start()
    try:
        drains = []
        for run in range(options.repeat):
            drain, total = drain_once(server.url, options.tasks, options.slots, options.sleep)
            drains.append(drain)
            print(f"run {run + 1}: {options.tasks} tasks drained in {drain:.3f} s "
                  f"(worker start to exit {total:.3f} s)", flush=True)
    finally:
        server.cleanup()
    floor = options.tasks / options.slots * options.sleep
    print(f"asyncio executor, {options.slots} slots, {options.tasks} x await asyncio.sleep({options.sleep:g}): "
          f"median drain {statistics.median(drains):.3f} s (floor {floor:.1f} s, target 2 s)")


if __name__ == "__main__":
    main(sys.argv[1:])
