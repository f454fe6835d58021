"""Redis memory per item: a waiting task, a scheduled task, a dead letter, a tracked finished task.

Two readings per kind, on an emptied server: the growth of ``INFO used_memory`` over N items (what the
items cost, allocator overhead and all), and ``MEMORY USAGE key SAMPLES 0`` of the keys that hold them
(every element counted). Both divided by N. These figures do not depend on the machine's load.
"""

from __future__ import annotations

import time

from bench import curves_fill, harness
from bench.curves_common import TASK, Bench, Table

#: (full, quick) items per kind; tracked tasks are run by a worker, so fewer
ITEMS = (100_000, 2_000)
TRACKED = (20_000, 300)


def used_memory(bench: Bench) -> int:
    """``INFO used_memory``, in bytes."""
    return int(bench.client.info("memory")["used_memory"])


def usage(bench: Bench, *keys: str) -> int:
    """``MEMORY USAGE`` of ``keys`` with every element counted (0 for a missing key)."""
    return sum(int(bench.client.memory_usage(key, samples=0) or 0) for key in keys)


def per_item(bench: Bench, fill: object, n: int, *keys: str) -> tuple[float, float]:
    """Bytes per item by used_memory growth and by MEMORY USAGE, for ``fill()`` writing ``n`` items."""
    bench.reset()
    before = used_memory(bench)
    fill()  # type: ignore[operator]
    grown = used_memory(bench) - before
    return grown / n, usage(bench, *keys) / n


def tracked_records(bench: Bench, n: int) -> tuple[float, float, str]:
    """Run ``n`` tracked no-op tasks to their end; bytes per record (used_memory growth, MEMORY USAGE of
    one record) and the record's encoding."""
    bench.reset()
    for _ in range(20):  # the scripts loaded, the connection pools open: not part of the figure
        bench.queue.enqueue(TASK, track=True)
    workers = bench.start_workers()
    try:
        harness.wait_until(lambda: bench.pending() == 0, 60)
        for key in bench.client.scan_iter(match="delayed_task:*", count=1000):
            bench.client.delete(key)
        bench.client.delete(bench.keys.throughput)
        before = used_memory(bench)
        handles = [handle for _ in range(n) if (handle := bench.queue.enqueue(TASK, track=True)) is not None]
        harness.wait_until(lambda: bench.pending() == 0 and handles[-1].status() == "succeeded", 300)
    finally:
        harness.stop_processes(workers)
    time.sleep(0.1)
    grown = used_memory(bench) - before
    key = f"delayed_task:{handles[0].id}"
    return grown / n, float(usage(bench, key)), bench.client.object("encoding", key).decode()


def measure(bench: Bench, quick: bool) -> Table:
    """Bytes per item of each kind."""
    size = 1 if quick else 0
    n = ITEMS[size]
    k, task = bench.keys, bench.task
    now = bench.server_ms()
    sample_letter = curves_fill.dead_letter(task, 0)
    table = Table("Redis memory per item", ["item", "bytes (used_memory growth)", "bytes (MEMORY USAGE)",
                                            "payload bytes", "items"])
    rows = [
        ("waiting task (`N` element + `N_noti` \"1\")", lambda: curves_fill.fill_waiting(bench.client, k, task, n),
         (k.queue, k.notifications), len(task)),
        ("scheduled task (`N_scheduled` member)",
         lambda: curves_fill.fill_scheduled(bench.client, k, task, n, lambda i: now + 3_600_000 + i),
         (k.scheduled,), 16 + len(task)),
        ("dead letter (`N_dead` JSON entry)", lambda: curves_fill.fill_dead(bench.client, k, task, n),
         (k.dead,), len(sample_letter)),
    ]
    for label, fill, keys, payload in rows:
        grown, counted = per_item(bench, fill, n, *keys)
        table.rows.append([label, grown, counted, payload, n])
    tracked = TRACKED[size]
    grown, counted, encoding = tracked_records(bench, tracked)
    table.rows.append([f"tracked finished task (`delayed_task:<id>` hash, {encoding})", grown, counted, "", tracked])
    table.notes.append(f"the task: `PyTask(noop)`, {len(task)} bytes serialized; the dead letter: a failed "
                       f"task with a 4-line traceback, {len(sample_letter)} bytes of JSON")
    return table
