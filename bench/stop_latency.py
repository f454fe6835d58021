"""How long an idle worker takes to stop: ``taskset -c 1 .venv/bin/python bench/stop_latency.py``.

Measures the wall time from ``worker.stop()`` to ``worker.run()`` returning, on an idle worker (every
slot blocked waiting for work, the keep-alive and cancel threads waiting on their subscriptions), for
each executor and for the layouts of a worker (several slots, ``--prefetch``, several queues), and the
end of a burst run on an empty queue. Median (and range) of ``--n`` stops each; rounds alternate the
cases so that a noisy neighbour hits them alike. Optional (``--sigterm``): a ``delayed worker`` process,
and one with ``--processes 2``, SIGTERM to exit.

Placement as in every benchmark here (:mod:`bench.harness`): the private redis-server on CPU 0.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from delayed_core import Delayed

#: case name -> (worker settings, queues)
CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "thread": ({"executor": "thread"}, ["default"]),
    "thread, 4 slots": ({"executor": "thread", "slots": 4}, ["default"]),
    "thread, prefetch 4": ({"executor": "thread", "prefetch": 4}, ["default"]),
    "thread, 3 queues": ({"executor": "thread"}, ["high", "default", "low"]),
    "asyncio": ({"executor": "asyncio"}, ["default"]),
    "fork": ({"executor": "fork"}, ["default"]),
    "subprocess": ({"executor": "subprocess"}, ["default"]),
}


MODULE = "bench.stop_latency"


def noop() -> None:
    """The module's task (a worker allowed no function at all warns at start)."""


def one_stop(url: str, settings: dict[str, object], queues: list[str], idle: float) -> float:
    """Start a worker in a thread, let it go idle for ``idle`` seconds, stop it: seconds to return."""
    app = Delayed(url, load_entry_points=False, imports=[MODULE], **settings)
    worker = app.worker(queues)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    harness.wait_until(lambda: len(worker.slots) == int(settings.get("slots", 1)) and all(
        slot.is_alive() for slot in worker.slots), 10.0)
    time.sleep(idle)  # every wait blocked by now, at some point of its own period
    started = time.perf_counter()
    worker.stop()
    thread.join(30)
    took = time.perf_counter() - started
    app.close()
    return took


def one_burst(url: str) -> float:
    """A burst run on an empty queue, start to return."""
    app = Delayed(url, load_entry_points=False, imports=[MODULE], dequeue_timeout=0.2)
    started = time.perf_counter()
    app.worker("default").run(burst=True, install_signals=False)
    took = time.perf_counter() - started
    app.close()
    return took


def one_sigterm(url: str, idle: float, processes: int = 0) -> float:
    """``delayed worker`` (with ``--processes`` when given) in a subprocess: SIGTERM once it is idle, to
    its exit."""
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
    argv = [str(Path(sys.executable).parent / "delayed"), "worker", "--broker", url, "--queue", "default",
            "--import", MODULE, *(["--processes", str(processes)] if processes else [])]
    process = subprocess.Popen(argv, cwd=harness.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    assert process.stderr is not None
    banners = 0
    for line in process.stderr:  # each worker logs its banner once its slots run
        banners += "worker serving" in line
        if banners == max(1, processes):
            break
    time.sleep(idle)
    started = time.perf_counter()
    process.terminate()
    process.communicate(timeout=30)  # waits for the exit, and drains and closes the stderr pipe
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="stops per case")
    parser.add_argument("--idle", type=float, nargs=2, default=(0.3, 1.3),
                        help="seconds idle before each stop: uniform in this range, the same sequence every run "
                             "(so that the stop falls anywhere in the periods of the waits)")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--sigterm", action="store_true", help="also time `delayed worker` on SIGTERM")
    options = parser.parse_args()
    cases = {name: case for name, case in CASES.items() if not options.only or name in options.only}
    server = harness.PinnedRedisServer().start()
    times: dict[str, list[float]] = {name: [] for name in (*cases, "burst, empty queue")}
    if options.sigterm:
        times["delayed worker, SIGTERM"] = []
        times["--processes 2, SIGTERM"] = []
    idle = random.Random(4).uniform
    try:
        for _ in range(options.n):
            for name, (settings, queues) in cases.items():
                times[name].append(one_stop(server.url, settings, queues, idle(*options.idle)))
            times["burst, empty queue"].append(one_burst(server.url))
            if options.sigterm:
                times["delayed worker, SIGTERM"].append(one_sigterm(server.url, idle(*options.idle)))
                times["--processes 2, SIGTERM"].append(one_sigterm(server.url, idle(*options.idle), 2))
    finally:
        server.cleanup()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; n={options.n}")
    for name, values in times.items():
        print(f"{name:28s} median {statistics.median(values) * 1000:7.1f} ms   "
              f"min {min(values) * 1000:7.1f}   max {max(values) * 1000:7.1f}")


if __name__ == "__main__":
    main()
