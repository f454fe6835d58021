"""Recovery benchmark: SIGKILL a worker that holds a task; time until another worker starts that task.

    python bench/recovery.py --keep-alive-timeout 15 --keep-alive-interval 3 --events on --kills 50

Setup: a private redis-server pinned to CPU 0, started as Redis ships (``notify-keyspace-events ""``);
one ``delayed sweeper`` with the default ``--interval`` (60 s) and ``--expiry-events auto`` (events on:
the sweeper turns them on itself) or ``off``; per lane, one queue served by two ``delayed worker``
processes (1 slot, thread executor), all pinned to CPU 1.

Per kill: enqueue a task (``bench.recovery_tasks:hold``); once it starts, wait a random part of the
keep-alive interval (and, without events, of the sweep interval), so that the kill falls anywhere in
those cycles; SIGKILL the worker holding it; the latency runs until the task starts again, by the
surviving worker's clock (same host). Then a replacement worker starts. Lanes run side by side so that
the slow rows fit in minutes; each lane kills in turn, and an expiry in one lane never recovers another
lane's task early (a sweep only moves the tasks of ids that are gone).

Counted: duplicates (starts beyond the two expected per task: the killed run and the recovery) and lost
tasks (a task whose recovery never started, or never finished). p99 is the nearest-rank percentile: with
fewer than 100 kills it is the slowest one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.recovery_tasks import DONE_KEY, starts_key
from delayed_core import Delayed, PyTask


@dataclass
class Setup:
    """One row of the table: the liveness settings, whether the sweeper hears expiries, how many kills."""

    keep_alive_timeout: float
    keep_alive_interval: float
    events: bool
    kills: int
    lanes: int
    sweeper_interval: float = 60.0


@dataclass
class Result:
    """What one row measured (seconds)."""

    setup: Setup
    latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def line(self) -> str:
        """A markdown table row."""
        s = self.setup
        return (f"| {s.keep_alive_timeout:g} s / {s.keep_alive_interval:g} s | {'on' if s.events else 'off'} "
                f"| {len(self.latencies)} | {self.percentile(50):.2f} s | {self.percentile(99):.2f} s "
                f"| {statistics.mean(self.latencies):.2f} s | {self.duplicates} | {self.lost} |")


def start_process(args: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    """``delayed ARGS`` pinned to the client CPU, from the repository root, its output in ``log``."""
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT), "RECOVERY_REDIS_URL": url}
    env = {key: value for key, value in env.items() if not key.startswith("DELAYED_")}
    delayed = str(Path(sys.executable).with_name("delayed"))
    with log.open("ab") as sink:
        return subprocess.Popen(harness.pinned([delayed, *args], harness.CLIENT_CPU), cwd=harness.ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


class Lane(threading.Thread):
    """One queue, two workers, ``kills`` kills in turn."""

    def __init__(self, index: int, url: str, setup: Setup, kills: int, logs: Path) -> None:
        super().__init__(daemon=True)
        self.queue, self.url, self.setup, self.kills, self.logs = f"lane{index}", url, setup, kills, logs
        self.client = redis.Redis.from_url(url)
        self.task_ids = [f"{index}-{k}" for k in range(kills)]
        self.latencies: list[float] = []
        self.error: BaseException | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> None:
        s = self.setup
        self.workers.append(start_process(
            ["worker", "--broker", self.url, "--queue", self.queue, "--import", "bench.recovery_tasks",
             "--executor", "thread", "--slots", "1", "--keep-alive-timeout", str(s.keep_alive_timeout),
             "--keep-alive-interval", str(s.keep_alive_interval)], self.url, self.logs / f"{self.queue}.log"))

    def starts(self, task_id: str, count: int, timeout: float) -> list[str]:
        """Wait until the task started ``count`` times; return the start entries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = [e.decode() for e in self.client.lrange(starts_key(task_id), 0, -1)]
            if len(entries) >= count:
                return entries
            time.sleep(0.01)
        raise TimeoutError(f"task {task_id} did not start {count} time(s) within {timeout:g}s")

    def kill_delay(self) -> float:
        """Seconds between the task's start and the kill: a random moment of the keep-alive cycle, and
        without expiry events of the sweep cycle too. Without that second part every kill would follow a
        sweep by the same few seconds (each kill comes right after the previous recovery, which a sweep
        made), and all of them would wait almost a whole interval for the next sweep."""
        s = self.setup
        return random.uniform(0, s.keep_alive_interval) + (0 if s.events else random.uniform(0, s.sweeper_interval))

    def run(self) -> None:
        try:
            self.measure()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def measure(self) -> None:
        s = self.setup
        queue = Delayed(self.url, load_entry_points=False).queue(self.queue)
        self.start_worker()
        self.start_worker()
        for task_id in self.task_ids:
            queue.enqueue(PyTask("bench.recovery_tasks:hold", [task_id]))
            pid = int(self.starts(task_id, 1, 120)[0].split()[0])
            time.sleep(self.kill_delay())
            (holder,) = (worker for worker in self.workers if worker.pid == pid)
            killed_at = time.time()
            holder.kill()
            holder.wait()
            self.workers.remove(holder)
            try:
                entries = self.starts(task_id, 2, s.keep_alive_timeout + s.sweeper_interval + 30)
            except TimeoutError as exc:
                print(f"{self.queue}: {exc}", file=sys.stderr)
            else:
                self.latencies.append(float(entries[1].split()[1]) - killed_at)
            # The replacement starts after the recovery, so that its start-up never competes with it.
            self.start_worker()

    def stop(self) -> None:
        harness.stop_processes(self.workers, grace=10)


def measure(setup: Setup, logs: Path) -> Result:
    """Run one row on a fresh redis-server."""
    server = harness.PinnedRedisServer().start()
    lanes: list[Lane] = []
    sweeper = None
    try:
        kills = [setup.kills // setup.lanes + (i < setup.kills % setup.lanes) for i in range(setup.lanes)]
        lanes = [Lane(i, server.url, setup, n, logs) for i, n in enumerate(kills) if n]
        queues = [arg for lane in lanes for arg in ("--queue", lane.queue)]
        sweeper = start_process(["sweeper", "--broker", server.url, *queues, "--max-recoveries", "0",
                                 "--interval", str(setup.sweeper_interval),
                                 "--expiry-events", "auto" if setup.events else "off"],
                                server.url, logs / "sweeper.log")
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()
        result = Result(setup, [latency for lane in lanes for latency in lane.latencies])
        client = server.client()
        task_ids = [task_id for lane in lanes for task_id in lane.task_ids]
        harness.wait_until(lambda: client.llen(DONE_KEY) >= len(result.latencies), 30, 0.05)
        done = [d.decode() for d in client.lrange(DONE_KEY, 0, -1)]
        result.duplicates = sum(max(0, client.llen(starts_key(t)) - 2) for t in task_ids)
        result.lost = sum(1 for t in task_ids if t not in done)
        for lane in lanes:
            if lane.error is not None:
                raise RuntimeError(f"{lane.queue}: {lane.error}") from lane.error
        return result
    finally:
        for lane in lanes:
            lane.stop()
        if sweeper is not None:
            harness.stop_processes([sweeper])
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep-alive-timeout", type=float, default=15.0)
    parser.add_argument("--keep-alive-interval", type=float, default=3.0)
    parser.add_argument("--events", choices=["on", "off"], default="on")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--lanes", type=int, default=5, help="queues measured side by side (default 5)")
    parser.add_argument("--sweeper-interval", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    setup = Setup(args.keep_alive_timeout, args.keep_alive_interval, args.events == "on", args.kills,
                  args.lanes, args.sweeper_interval)
    with tempfile.TemporaryDirectory(prefix="delayed-recovery-") as logs:
        started = time.monotonic()
        result = measure(setup, Path(logs))
    print("| keep-alive timeout / interval | expiry events | kills | p50 | p99 | mean | duplicates | lost |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(result.line())
    target = setup.keep_alive_timeout + 0.5
    print(f"target p99 <= {target:g} s: {'met' if result.percentile(99) <= target else 'NOT met'} "
          f"({time.monotonic() - started:.0f} s of wall time)")
    if args.json:
        args.json.write_text(json.dumps({**asdict(result), "p50": result.percentile(50),
                                         "p99": result.percentile(99)}, indent=1))
    return 1 if result.lost or len(result.latencies) < setup.kills else 0


if __name__ == "__main__":
    sys.exit(main())
