"""Task handles, tracked against untracked, in one run: ``taskset -c 1 .venv/bin/python bench/handles.py``.

Measures (docs/benchmarks.md, "Task handles"):

1. single enqueue (``f.delay()`` one call at a time), tracked vs ``result_ttl=0``, in alternating blocks
   of 200 calls;
2. one worker slot draining a pre-filled queue (thread executor, in-process, burst), tracked vs
   untracked, with the Redis commands sent per task;
3. enqueue-to-result latency on an idle worker (``delayed worker`` in a subprocess):
   ``f.delay(); handle.result()``, p50 and p99;
4. Redis memory per finished tracked task (``MEMORY USAGE`` of its record).

Placement as in every benchmark here (:mod:`bench.harness`): the private redis-server on CPU 0, the
clients on CPU 1. Rounds alternate tracked and untracked so that a noisy neighbour hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from delayed_core import Delayed
from delayed_core.results import tracker_for
from delayed_core.runner import TaskRunner
from delayed_core.task_function import TaskFunction

MODULE = "bench.handles"


def add(a: int, b: int) -> int:
    """The benchmark task."""
    return a + b


def functions(app: Delayed) -> tuple[TaskFunction[..., int], TaskFunction[..., int]]:
    """``add`` tracked and untracked, on ``app``."""
    tracked = app.task(name=f"{MODULE}:add")(add)
    untracked = TaskFunction(app, add, tracked.path, app.config["queue"], 0, result_ttl=0)
    return tracked, untracked


def enqueue_rates(tracked: TaskFunction[..., int], untracked: TaskFunction[..., int], n: int,
                  block: int = 200) -> dict[str, float]:
    """Single ``delay`` calls per second, tracked and untracked, alternating blocks of ``block`` calls (a
    shared machine's noise then hits both alike); the median block of each."""
    times: dict[str, list[float]] = {"tracked": [], "untracked": []}
    for _ in range(max(1, n // block)):
        for name, func in (("untracked", untracked), ("tracked", tracked)):
            started = time.perf_counter()
            for i in range(block):
                func.delay(i, 1)
            times[name].append((time.perf_counter() - started) / block)
    return {name: 1 / statistics.median(values) for name, values in times.items()}


def drain_rate(url: str, func: TaskFunction[..., int], n: int) -> tuple[float, float]:
    """Tasks per second of one slot draining ``n`` tasks (from the first task taken to the queue and
    N_processing both empty, polled every 5 ms), and Redis commands per task."""
    for i in range(n):
        func.delay(i, 1)
    app = Delayed(url, imports=[MODULE], load_entry_points=False, dequeue_timeout=0.2)
    raw = app.broker("default").client
    worker = app.worker(slots=1, executor="thread")
    before = harness.command_calls(raw)
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    started = harness.wait_until(lambda: raw.llen("default") < n, 30)
    ended = harness.wait_until(lambda: raw.llen("default") == 0 and raw.hlen("default_processing") == 0, 120)
    sent = harness.calls_delta(before, harness.command_calls(raw))
    worker.stop()
    thread.join(30)
    app.close()
    # commands run inside scripts are counted by Redis too: count what clients send
    client_sent = sum(calls for name, calls in sent.items() if name in ("evalsha", "blpop", "eval"))
    return n / (ended - started), client_sent / n


def mixed_drain(url: str, tracked: TaskFunction[..., int], untracked: TaskFunction[..., int], n: int,
                block: int = 100) -> dict[str, float]:
    """Microseconds per task of one slot draining a queue of alternating blocks of ``block`` untracked and
    ``block`` tracked tasks: each ``TaskRunner.process`` call (the run and the settling call, which takes
    the next task) timed by the kind of the task it ran. The kinds alternate every few ms, so a noisy
    neighbour hits both alike: the steadiest ratio this machine gives. The mean of each kind's middle 90 %."""
    for start in range(0, n, 2 * block):
        for func in (untracked, tracked):
            for i in range(block):
                func.delay(start + i, 1)
    app = Delayed(url, imports=[MODULE], load_entry_points=False, dequeue_timeout=0.2)
    times: dict[str, list[float]] = {"tracked": [], "untracked": []}
    original = TaskRunner.process

    def timed(runner: TaskRunner, slot: Any, queue: str, raw: bytes) -> Any:
        started = time.perf_counter()
        try:
            return original(runner, slot, queue, raw)
        finally:
            times["tracked" if b"\xa2id" in raw else "untracked"].append(time.perf_counter() - started)

    TaskRunner.process = timed  # type: ignore[method-assign]
    try:
        app.worker(slots=1, executor="thread").run(burst=True, install_signals=False)
    finally:
        TaskRunner.process = original  # type: ignore[method-assign]
        app.close()
    means = {}
    for name, values in times.items():
        values.sort()
        middle = values[len(values) // 20: len(values) - len(values) // 20]
        means[name] = statistics.mean(middle) * 1e6
    return means


_worker: list[subprocess.Popen[bytes]] = []


def stop_worker() -> None:
    """Stop the latency benchmark's worker, if it runs."""
    while _worker:
        process = _worker.pop()
        process.terminate()
        process.wait(10)


def latencies(url: str, func: TaskFunction[..., int], n: int, after: Callable[[], None] | None = None,
              worker: bool = True) -> list[float]:
    """Seconds from ``delay`` to the value in hand, ``n`` times in a row, with an idle worker waiting (a
    new one when ``worker``; else the one started before); ``after`` runs after each, untimed."""
    if worker or not _worker:
        stop_worker()
        _worker.append(subprocess.Popen(
            harness.pinned([sys.executable, "-m", "delayed_core.cli.main", "worker", "--broker", url, "--import",
                            MODULE, "--dequeue-timeout", "5"], harness.CLIENT_CPU),
            cwd=harness.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        func.delay(0, 0).result(timeout=30)  # the worker is up, scripts are loaded
    samples = []
    for i in range(n):
        started = time.perf_counter()
        assert func.delay(i, 1).result(timeout=10) == i + 1
        samples.append(time.perf_counter() - started)
        if after is not None:
            after()
    return samples


def print_latency(samples: list[float]) -> None:
    """p50 and p99 of sorted ``samples``, in ms."""
    p50 = samples[len(samples) // 2] * 1000
    p99 = samples[int(len(samples) * 0.99) - 1] * 1000
    print(f"enqueue-to-result    p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({len(samples)} in a row, idle worker)")


def latency_only(n: int, rounds: int) -> None:
    """Enqueue-to-result alone, ``rounds`` times, with the load average (a shared machine), for three
    waiters in alternating blocks of 100 (so that all see the same noise): SUBSCRIBE and read pipelined
    on a RESP3 connection (the default), pub/sub with a kept connection (the fallback), and pub/sub with
    a new connection per wait (as before)."""
    server = harness.PinnedRedisServer().start()
    try:
        tracked, _ = functions(Delayed(server.url, load_entry_points=False))
        tracker: Any = tracker_for(tracked.app.queue("default").broker)
        pipelined, pubsub = tracker._waiter, tracker._waiter.fallback
        variants: dict[str, tuple[Any, Callable[[], None] | None]] = {
            "pipelined (RESP3)": (pipelined, None), "pub/sub, kept": (pubsub, None),
            "pub/sub, new conn": (pubsub, pubsub._drop)}
        for _ in range(rounds):
            print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            samples: dict[str, list[float]] = {name: [] for name in variants}
            for block in range(max(1, n // 100)):
                name = list(variants)[block % len(variants)]
                tracker._waiter, after = variants[name]
                samples[name] += latencies(server.url, tracked, 100, after, worker=block == 0)
            for name, values in samples.items():
                print(f"  {name:<18} ", end="")
                print_latency(sorted(values))
    finally:
        stop_worker()
        server.stop()


def mixed_only(n: int, rounds: int) -> None:
    """:func:`mixed_drain` ``rounds`` times, with the load average (a shared machine)."""
    server = harness.PinnedRedisServer().start()
    try:
        tracked, untracked = functions(Delayed(server.url, load_entry_points=False))
        client = server.client()
        ratios = []
        for _ in range(rounds):
            client.flushall()
            us = mixed_drain(server.url, tracked, untracked, n)
            ratios.append(us["untracked"] / us["tracked"])
            print(f"load {os.getloadavg()[0]:.1f}  mixed 1-slot drain: untracked {us['untracked']:.1f} us/task, "
                  f"tracked {us['tracked']:.1f} us/task, ratio {ratios[-1]:.2f}")
        print(f"mixed 1-slot drain ratio: median {statistics.median(ratios):.2f} of {rounds}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="tasks per enqueue/drain round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-n", type=int, default=1000)
    parser.add_argument("--latency-only", action="store_true", help="measure enqueue-to-result only")
    parser.add_argument("--mixed-only", action="store_true",
                        help="measure the 1-slot drain of alternating tracked and untracked blocks only")
    options = parser.parse_args()
    if options.latency_only:
        latency_only(options.latency_n, options.rounds)
        return
    if options.mixed_only:
        mixed_only(options.n, options.rounds)
        return
    server = harness.PinnedRedisServer().start()
    try:
        url = server.url
        client = server.client()
        app = Delayed(url, load_entry_points=False)
        tracked, untracked = functions(app)
        enqueue = {"tracked": [], "untracked": []}
        drain = {"tracked": [], "untracked": []}
        per_task = {"tracked": 0.0, "untracked": 0.0}
        for _ in range(options.rounds):
            client.flushall()
            for name, rate in enqueue_rates(tracked, untracked, options.n).items():
                enqueue[name].append(rate)
            for name, func in (("untracked", untracked), ("tracked", tracked)):
                client.flushall()
                rate, per_task[name] = drain_rate(url, func, options.n)
                drain[name].append(rate)
        client.flushall()
        for i in range(200):
            tracked.delay(i, 1)
        Delayed(url, imports=[MODULE], load_entry_points=False, dequeue_timeout=0.2).worker().run(
            burst=True, install_signals=False)
        sizes = [client.memory_usage(key) for key in client.scan_iter("delayed_task:*", count=1000)]
        samples = sorted(latencies(url, tracked, options.latency_n))
        stop_worker()
        for label, table in (("single enqueue /s", enqueue), ("1-slot drain /s", drain)):
            best = {name: statistics.median(values) for name, values in table.items()}
            print(f"{label:<20} untracked {best['untracked']:>8.0f}  tracked {best['tracked']:>8.0f}  "
                  f"ratio {best['tracked'] / best['untracked']:.2f}  (median of {options.rounds})")
        print(f"{'commands per task':<20} untracked {per_task['untracked']:.2f}  tracked {per_task['tracked']:.2f} "
              "(drain, client-sent EVALSHA/BLPOP)")
        print_latency(samples)
        print(f"memory per finished tracked task: {statistics.mean(sizes):.0f} bytes (MEMORY USAGE, mean of "
              f"{len(sizes)}; result: a small int)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
