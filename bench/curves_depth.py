"""Queue depth: single enqueue and 1-slot drain with 1k .. 5M tasks already waiting.

Each depth D has its own queue (``depth<D>``), all filled at once on one server, and the rounds
measure the depths one after another (rotating the order), so that a change of load on the shared
machine during the run touches every depth alike. A queue holds D waiting tasks plus what a round
drains; per round and depth:

- ``ENQUEUES`` single ``queue.enqueue(task)`` calls, timed (they add to the tail);
- a fresh worker (thread executor, 1 slot) drains ``DRAIN`` tasks from the head after taking ``WARM``
  to warm up, timed from the moment the queue length crosses ``D + DRAIN`` to the moment it reaches
  ``D``; the worker is then stopped. So the drained tasks are always taken with at least D behind them.

Every task is the same no-op; Redis list operations at the head and tail do not depend on the length,
so the curve should be flat: this measures that it is.
"""

from __future__ import annotations

import sys
import time

from bench import curves_fill, harness
from bench.curves_common import TASK, Bench, Table, median, redis_cpu
from bench.peers import pydelayed_peer
from delayed_core import Delayed
from delayed_redis.keys import QueueKeys

#: (full, quick) settings
DEPTHS = ((1_000, 100_000, 1_000_000, 5_000_000), (1_000, 20_000))
ENQUEUES = (3_000, 200)
DRAIN = (10_000, 300)
WARM = (1_000, 100)
ROUNDS = (5, 1)


class Depth:
    """One depth's queue and its measurements."""

    def __init__(self, bench: Bench, depth: int) -> None:
        self.depth = depth
        self.name = f"depth{depth}"
        self.queue = bench.app.queue(self.name)
        self.keys = QueueKeys.for_queue(self.name)
        self.enqueues: list[float] = []
        self.drains: list[float] = []
        #: Redis CPU microseconds per enqueue / per drained task (INFO cpu): what the depth could change,
        #: and far less disturbed than the rates by other processes on the shared machine
        self.enqueue_cpu: list[float] = []
        self.drain_cpu: list[float] = []
        self.commands = 0.0

    def point(self) -> dict[str, float]:
        """The medians and spreads, for the table and the plot."""
        return {"depth": self.depth, "enqueue": median(self.enqueues), "drain": median(self.drains),
                "commands": self.commands, "enqueue_low": min(self.enqueues), "enqueue_high": max(self.enqueues),
                "drain_low": min(self.drains), "drain_high": max(self.drains),
                "enqueue_cpu_us": median(self.enqueue_cpu), "drain_cpu_us": median(self.drain_cpu)}



def enqueue_rate(bench: Bench, depth: Depth, n: int) -> tuple[float, float]:
    """Single enqueues per second, and script calls per enqueue (INFO commandstats)."""
    before = harness.command_calls(bench.client)
    enqueue = depth.queue.enqueue
    started = time.perf_counter()
    for _ in range(n):
        enqueue(TASK)
    rate = n / (time.perf_counter() - started)
    sent = harness.calls_delta(before, harness.command_calls(bench.client))
    return rate, sent.get("evalsha", 0) / n


def drain_rate(bench: Bench, depth: Depth, drain: int) -> tuple[float, float]:
    """Tasks per second one fresh 1-slot worker takes while its queue goes from ``depth + drain`` to
    ``depth`` (the queue holds more than that when it starts), and Redis CPU microseconds per task then."""
    llen, key = bench.client.llen, depth.keys.queue
    argv = [sys.executable, "-m", "bench.curves_depth", depth.name]
    workers = harness.start_processes([argv], bench.env())
    try:
        def at_most(length: int) -> bool:
            harness.check_alive(workers)
            return llen(key) <= length

        started = harness.wait_until(lambda: at_most(depth.depth + drain), 120, interval=0.002)
        cpu = redis_cpu(bench.client)
        finished = harness.wait_until(lambda: at_most(depth.depth), 300, interval=0.002)
        cpu = redis_cpu(bench.client) - cpu
    finally:
        harness.stop_processes(workers)
    return drain / (finished - started), cpu / drain * 1e6


def run_round(bench: Bench, depth: Depth, quick: bool) -> None:
    """Top the queue up, time the enqueues, then the drain."""
    size = 1 if quick else 0
    n, drain, warm = ENQUEUES[size], DRAIN[size], WARM[size]
    length = bench.client.llen(depth.keys.queue)
    # so that the drain ends at `depth` after taking `warm` + `drain` (the enqueues come on top)
    curves_fill.fill_waiting(bench.client, depth.keys, bench.task, max(0, depth.depth + drain + warm - n - length))
    cpu = redis_cpu(bench.client)
    rate, depth.commands = enqueue_rate(bench, depth, n)
    depth.enqueue_cpu.append((redis_cpu(bench.client) - cpu) / n * 1e6)
    depth.enqueues.append(rate)
    rate, per_task = drain_rate(bench, depth, drain)
    depth.drains.append(rate)
    depth.drain_cpu.append(per_task)


def measure(bench: Bench, quick: bool) -> tuple[Table, list[dict[str, float]]]:
    """Every depth; the table, and the points for the plot."""
    size = 1 if quick else 0
    bench.reset()
    depths = [Depth(bench, depth) for depth in DEPTHS[size]]
    started = time.perf_counter()
    for depth in depths:
        curves_fill.fill_waiting(bench.client, depth.keys, bench.task, depth.depth)
    fill_seconds = time.perf_counter() - started
    enqueue_rate(bench, depths[0], 20)  # load the script
    for round_number in range(ROUNDS[size]):
        for depth in depths[round_number % len(depths):] + depths[:round_number % len(depths)]:
            run_round(bench, depth, quick)
    points = [depth.point() for depth in depths]
    base = points[0]
    table = Table("Queue depth: single enqueue and 1-slot drain (thread executor)",
                  ["tasks waiting", "enqueue calls/s [min-max]", "vs 1k", "drain tasks/s [min-max]", "vs 1k",
                   "script calls per enqueue", "Redis CPU us per enqueue", "vs 1k",
                   "Redis CPU us per drained task", "vs 1k"])
    for point in points:
        table.rows.append([
            point["depth"], f"{point['enqueue']:,.0f} [{point['enqueue_low']:,.0f}-{point['enqueue_high']:,.0f}]",
            f"{point['enqueue'] / base['enqueue']:.2f}",
            f"{point['drain']:,.0f} [{point['drain_low']:,.0f}-{point['drain_high']:,.0f}]",
            f"{point['drain'] / base['drain']:.2f}", f"{point['commands']:.2f}",
            point["enqueue_cpu_us"], f"{point['enqueue_cpu_us'] / base['enqueue_cpu_us']:.2f}",
            point["drain_cpu_us"], f"{point['drain_cpu_us'] / base['drain_cpu_us']:.2f}"])
    total = sum(depth.depth for depth in depths)
    table.notes.append(f"{len(depths)} queues on one server ({total:,} tasks filled in {fill_seconds:.1f} s with "
                       f"pipelined RPUSH; Redis used_memory {bench.client.info('memory')['used_memory'] / 2**20:,.0f}"
                       f" MiB at the end); medians of {ROUNDS[size]} rounds, the depths measured in turn")
    return table, points


def main(argv: list[str]) -> None:
    """A benchmark worker on queue ``argv[0]``: thread executor, 1 slot."""
    app = Delayed(pydelayed_peer.base.redis_url(), imports=[pydelayed_peer.MODULE], queue=argv[0],
                  log_level="WARNING")
    app.worker(argv[0]).run()


if __name__ == "__main__":
    main(sys.argv[1:])
