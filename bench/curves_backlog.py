"""Scheduled backlog: a sorted set of 1M scheduled tasks, 10k of them due at the same moment.

Three figures:

- the scheduled enqueue rate (``queue.enqueue(task, delay=...)``, one call each) on an empty and on a
  full sorted set;
- one promotion of the 10k due tasks by ``broker.promote_and_peek()`` alone (no worker): its script
  calls and the longest one (SLOWLOG);
- lateness with running workers: the 10k tasks fall due together; how long after their due time the
  last was promoted (moved into the queue) and the last started (taken by a slot: the queue is empty
  and nothing is left due), with the longest promote call seen meanwhile.
"""

from __future__ import annotations

import time

from bench import curves_fill, harness
from bench.curves_common import (
    TASK,
    Bench,
    Table,
    cpu_per_call,
    durations,
    median,
    script_stats,
    slowlog_over,
)
from delayed_redis import scripts

#: (full, quick) sizes
BACKLOG = (1_000_000, 20_000)
DUE = (10_000, 1_000)
ENQUEUES = (2_000, 100)
#: workers of the lateness figure: processes x slots (thread executor)
WORKERS = (2, 1)
#: the due tasks fall due this long after they are written
LEAD_MS = 1500
#: prefetch of the second lateness figure
PREFETCH = 32
FAR_MS = 86_400_000


def fill_far(bench: Bench, n: int) -> None:
    """``n`` scheduled tasks due a day or more from now (spread over a day, 1 per ms apart or so)."""
    now = bench.server_ms()
    curves_fill.fill_scheduled(bench.client, bench.keys, bench.task, n, lambda i: now + FAR_MS + i * 86)


def fill_due(bench: Bench, n: int, due_ms: int) -> None:
    """``n`` scheduled tasks all due at ``due_ms``, announced as schedule.lua announces them."""
    curves_fill.fill_scheduled(bench.client, bench.keys, bench.task, n, lambda _i: due_ms)
    bench.client.publish(bench.keys.scheduled, due_ms)


def enqueue_rate(bench: Bench, n: int) -> float:
    """Scheduled single enqueues per second (due in an hour, so that nothing is promoted)."""
    enqueue = bench.queue.enqueue
    started = time.perf_counter()
    for _ in range(n):
        enqueue(TASK, delay=3600)
    return n / (time.perf_counter() - started)


def promote_alone(bench: Bench, backlog: int, due: int) -> tuple[int, float, float, float, float]:
    """Script calls, longest (SLOWLOG), most Redis CPU in one call, total Redis ms and wall ms of one
    ``promote_and_peek`` moving ``due`` tasks."""
    bench.reset()
    fill_far(bench, backlog - due)
    fill_due(bench, due, bench.server_ms() - 1000)
    bench.broker.promote_and_peek()  # loads the script; nothing is due in the far ones
    fill_due(bench, due, bench.server_ms() - 1000)
    before = script_stats(bench.client)
    with slowlog_over(bench.client) as entries, cpu_per_call(bench.client, "PROMOTE") as cpu:
        started = time.perf_counter()
        moved, _ = bench.broker.promote_and_peek()
        wall = time.perf_counter() - started
    calls, usec = (after - old for after, old in zip(script_stats(bench.client), before, strict=True))
    if moved != due:
        raise AssertionError(f"promoted {moved} of {due} due tasks")
    return (calls, max(durations(entries, "evalsha", scripts.PROMOTE.sha), default=0) / 1000, max(cpu) / 1000,
            usec / 1000, wall * 1000)


def lateness(bench: Bench, backlog: int, due: int, processes: int, prefetch: int = 1) -> tuple[float, float, float]:
    """Seconds from the due time to the last promotion and to the last start; longest promote call (ms)."""
    bench.reset()
    fill_far(bench, backlog - due)
    workers = bench.start_workers(processes, prefetch=prefetch)
    try:
        bench.queue.enqueue(TASK)  # wait until the workers run (one of them ran this task)
        harness.wait_until(lambda: bench.pending() == 0 and _checked(workers), 60)
        due_ms = bench.server_ms() + LEAD_MS
        with slowlog_over(bench.client) as entries:
            fill_due(bench, due, due_ms)
            promoted = _seen(bench, workers, lambda: bench.client.zcount(bench.keys.scheduled, "-inf", due_ms) == 0)
            started = _seen(bench, workers, lambda: bench.client.llen(bench.keys.queue) == 0)
            harness.wait_until(lambda: bench.pending() == 0, 60)
    finally:
        harness.stop_processes(workers)
    longest = max(durations(entries, "evalsha", scripts.PROMOTE.sha), default=0)
    return promoted - due_ms / 1000, started - due_ms / 1000, longest / 1000


def _seen(bench: Bench, workers: list, condition) -> float:  # type: ignore[no-untyped-def]
    """Unix time at which ``condition`` was first seen true (polled every 2 ms)."""
    harness.wait_until(lambda: _checked(workers) and condition(), 120, interval=0.002)
    return time.time()


def _checked(workers: list) -> bool:  # type: ignore[type-arg]
    harness.check_alive(workers)
    return True


def measure(bench: Bench, quick: bool) -> list[Table]:
    """The three figures as two tables."""
    size = 1 if quick else 0
    backlog, due, n = BACKLOG[size], DUE[size], ENQUEUES[size]
    rates = Table("Scheduled enqueue rate (single calls, `enqueue(task, delay=3600)`)",
                  ["scheduled tasks already waiting", "enqueues/s"])
    for depth in (0, backlog):
        bench.reset()
        fill_far(bench, depth)
        enqueue_rate(bench, 50)  # script load, connection
        rates.rows.append([depth, median([enqueue_rate(bench, n) for _ in range(1 if quick else 3)])])
    calls, longest, most_cpu, total, wall = promote_alone(bench, backlog, due)
    promotion = Table(f"Promotion of {due:,} tasks due at the same ms among {backlog:,} scheduled",
                      ["what", "value"])
    promotion.rows += [["promote script calls (`promote_and_peek` alone)", calls],
                       ["longest promote call (SLOWLOG, ms)", longest],
                       ["Redis CPU around one promote call, most (INFO cpu, ms)", most_cpu],
                       ["all promote calls (commandstats, ms)", total],
                       ["wall of `promote_and_peek` (ms)", wall]]
    promoted, started, worst = lateness(bench, backlog, due, WORKERS[size])
    promotion.rows += [[f"with {WORKERS[size]} worker process(es), 1 slot each: last task promoted, s after due",
                        promoted],
                       ["... last task started (taken by a slot), s after due", started],
                       ["... longest promote call meanwhile (SLOWLOG, ms)", worst]]
    # The start figure is the workers' capacity (10k tasks in 1 s is 10k tasks/s): with prefetch a slot
    # takes 32 tasks per round trip.
    promoted, started, worst = lateness(bench, backlog, due, WORKERS[size], prefetch=PREFETCH)
    promotion.rows += [[f"with {WORKERS[size]} worker process(es), 1 slot each, `--prefetch {PREFETCH}`: last task "
                        "promoted, s after due", promoted],
                       ["... last task started (taken by a slot), s after due", started],
                       ["... longest promote call meanwhile (SLOWLOG, ms)", worst]]
    return [rates, promotion]
