"""Drain rate of ``delayed worker --processes N`` against N = 1, with redis-server pinned to CPU 0.

Usage: ``.venv/bin/python bench/processes.py [--tasks 20000] [--reps 3] [--processes 1,2]``.

The workers are NOT pinned: the point is to see what a second worker process buys when the machine also
runs Redis. Each repetition starts the workers on an empty queue, waits until every process is online,
then enqueues the no-op tasks in one batch and times until the queue is empty and nothing is held.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from delayed_core import Delayed, PyTask

QUEUE = "bench-processes"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (the supervisor and its worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


def drain_once(server: harness.PinnedRedisServer, processes: int, tasks: int, extra: Sequence[str] = (),
               worker_cpu: int | None = None, ids_per_process: int = 1) -> tuple[float, float, float, float]:
    """One timed drain: tasks per second, CPU milliseconds per 1000 tasks of Redis and of the workers, and
    worker round trips (script calls and BLPOPs) per task.

    :param extra: more ``delayed worker`` options (``--prefetch 32``).
    :param worker_cpu: pin the worker process to this CPU (unpinned when None).
    :param ids_per_process: worker ids each process claims (its slots times their prefetch).
    """
    client = server.client()
    client.flushall()
    argv = [str(harness.ROOT / ".venv" / "bin" / "delayed"), "worker", "--broker", server.url, "--queue", QUEUE,
            "--import", "tests.scale_tasks", "--processes", str(processes), "--dequeue-timeout", "1", *extra]
    if worker_cpu is not None:
        argv = harness.pinned(argv, worker_cpu)
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
    (workers,) = harness.start_processes([argv], env)
    try:
        harness.wait_until(lambda: client.zcard(f"{QUEUE}_workers") == processes * ids_per_process, 30, 0.05)
        app = Delayed(server.url, load_entry_points=False)
        batch = [PyTask("tests.scale_tasks:noop") for _ in range(tasks)]
        redis_cpu, workers_cpu = cpu_seconds(server.process.pid), tree_cpu_seconds(workers.pid)
        calls = harness.command_calls(client)
        start = time.perf_counter()
        app.queue(QUEUE).enqueue_many(batch)
        end = harness.wait_until(lambda: client.llen(QUEUE) == 0 and client.hlen(f"{QUEUE}_processing") == 0,
                                 300, 0.002)
        redis_cpu = cpu_seconds(server.process.pid) - redis_cpu
        workers_cpu = tree_cpu_seconds(workers.pid) - workers_cpu
        calls = harness.calls_delta(calls, harness.command_calls(client))
        trips = sum(calls.get(name, 0) for name in ("evalsha", "blpop")) / tasks
        harness.check_alive([workers])
        app.close()
        return tasks / (end - start), redis_cpu / tasks * 1e6, workers_cpu / tasks * 1e6, trips
    finally:
        harness.stop_processes([workers], grace=15)


def interleaved(values: Sequence[int], reps: int, drain: Callable[[int], tuple[float, float, float, float]]
                ) -> dict[int, list[tuple[float, float, float, float]]]:
    """``reps`` drains per value, taken in turns (1, 2, 1, 2 ...) so that every value sees the same
    changes of load on a shared machine."""
    runs: dict[int, list[tuple[float, float, float, float]]] = {value: [] for value in values}
    for _ in range(reps):
        for value in values:
            runs[value].append(drain(value))
    return runs


def report(option: str, runs_by_value: dict[int, list[tuple[float, float, float, float]]]) -> None:
    """Print one line of figures per value of ``option`` (the median of its runs), then each ratio to 1."""
    medians: dict[int, float] = {}
    for value, runs in runs_by_value.items():
        rates = [run[0] for run in runs]
        medians[value] = statistics.median(rates)
        print(f"{option} {value:3d}: {medians[value]:6.0f} tasks/s "
              f"(runs {', '.join(f'{r:.0f}' for r in rates)}); CPU per 1000 tasks: "
              f"redis {statistics.median(run[1] for run in runs):.0f} ms, "
              f"workers {statistics.median(run[2] for run in runs):.0f} ms; "
              f"round trips per task {statistics.median(run[3] for run in runs):.3f}", flush=True)
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{load:.1f}' for load in os.getloadavg())}")
    if 1 in medians:
        for value, rate in medians.items():
            print(f"ratio {option} {value} / 1: {rate / medians[1]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args(argv)
    server = harness.PinnedRedisServer().start()
    try:
        values = [int(n) for n in args.processes.split(",")]
        report("--processes", interleaved(values, args.reps, lambda processes: drain_once(server, processes,
                                                                                         args.tasks)))
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
