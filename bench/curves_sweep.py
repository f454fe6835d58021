"""Many workers: one sweep of a queue whose processing hash holds tasks of thousands of workers.

The queue: ``LIVE`` tasks held by live worker ids (each with its liveness key), ``DEAD`` held by ids
whose key is gone, ``LIVE`` ids in the worker registry, and ``WAITING`` waiting tasks. One sweep must
requeue exactly the ``DEAD`` tasks and leave the live ones held; SLOWLOG (threshold 0 for the sweep)
gives how long Redis was blocked by each script call.
"""

from __future__ import annotations

import time

from bench import curves_fill
from bench.curves_common import TASK, Bench, Table, cpu_per_call, durations, script_stats, slowlog_over
from delayed_core import PyTask
from delayed_redis import scripts

#: (full, quick) sizes
LIVE = (10_000, 500)
DEAD = (1_000, 50)
WAITING = (100_000, 1_000)
RUNS = (3, 1)


def fill(bench: Bench, live: int, dead: int, waiting: int) -> None:
    """The held tasks, liveness keys, worker registry and waiting tasks of the sweep's queue."""
    curves_fill.fill_waiting(bench.client, bench.keys, bench.task, waiting)
    # Distinct tasks (a different argument each): the poison cap counts recoveries per task bytes.
    tasks = [bench.app.serializer.dumps(PyTask(TASK.func_path, [i])) for i in range(live + dead)]
    ids = curves_fill.fill_held(bench.client, bench.keys, tasks[:live], "live-", ttl=3600)
    curves_fill.fill_held(bench.client, bench.keys, tasks[live:], "dead-", ttl=None)
    now_ms = int(time.time() * 1000)
    for first in range(0, len(ids), 1000):
        bench.client.zadd(bench.keys.workers, {worker_id: now_ms for worker_id in ids[first:first + 1000]})


def sweep_once(bench: Bench, live: int, dead: int, waiting: int) -> list[float]:
    """Fill, sweep once, check what moved; the row of the table."""
    bench.reset()
    fill(bench, live, dead, waiting)
    bench.broker.keep_alive(["warm-up"], 1)  # the scripts are loaded: NOSCRIPT is not part of the figure
    calls_before, usec_before = script_stats(bench.client)
    with slowlog_over(bench.client) as entries, cpu_per_call(bench.client, "SWEEP") as cpu:
        started = time.perf_counter()
        report = bench.broker.sweep(max_recoveries=5)
        wall = time.perf_counter() - started
    calls, usec = (after - before for after, before in zip(script_stats(bench.client), (calls_before, usec_before),
                                                           strict=True))
    longest = max(durations(entries, "evalsha", scripts.SWEEP.sha), default=0)
    longest_any = max((int(entry["duration"]) for entry in entries), default=0)
    held = bench.client.hlen(bench.keys.processing)
    queued, notes = bench.client.llen(bench.keys.queue), bench.client.llen(bench.keys.notifications)
    if report.requeued != dead or held != live or queued != waiting + dead or notes != queued:
        raise AssertionError(f"sweep moved the wrong tasks: requeued {report.requeued} of {dead}, {held} of "
                             f"{live} still held, {queued} queued, {notes} notifications")
    over = sum(1 for duration in durations(entries, "evalsha", scripts.SWEEP.sha) if duration > 5000)
    return [calls, usec / calls / 1000, max(cpu) / 1000, longest / 1000, over, longest_any / 1000, wall * 1000]


def measure(bench: Bench, quick: bool) -> Table:
    """Sweep a few times (a fresh fill each); the calls each sweep made, the longest, what it moved."""
    size = 1 if quick else 0
    live, dead, waiting = LIVE[size], DEAD[size], WAITING[size]
    table = Table(f"Sweep: {live:,} tasks held by live ids, {dead:,} by dead ids, {waiting:,} waiting",
                  ["run", "script calls", "mean call (commandstats, ms)", "Redis CPU around one call, most (ms)",
                   "longest call (SLOWLOG, ms)", "calls over 5 ms (SLOWLOG)", "longest command of any kind (ms)",
                   "sweep wall (ms)"])
    for run in range(1, RUNS[size] + 1):
        table.rows.append([run, *sweep_once(bench, live, dead, waiting)])
    table.notes.append(f"checked each run: exactly the {dead:,} dead ids' tasks requeued, the live ones still held, "
                       "one notification per waiting task")
    return table
