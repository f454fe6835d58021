"""What the scaling curves share: the app on the private server, its queue, SLOWLOG readings, timing.

SLOWLOG is the deterministic half of the figures: it records how long Redis itself spent in each
command (a script call counts as one), independent of the client's share of the shared machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import harness
from bench.peers import pydelayed_peer
from bench.peers.base import URL_VARIABLE
from delayed_core import Delayed, PyTask
from delayed_redis.keys import QueueKeys
from tests.support.redis_server import RedisServer

QUEUE = pydelayed_peer.QUEUE
#: the no-op task every curve is made of, importable by the benchmark's workers
TASK = PyTask(pydelayed_peer.noop)


@dataclass
class Table:
    """One table of results: a title, the column names, the rows, and notes printed under it."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The table as GitHub markdown."""
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def cell(value: Any) -> str:
    """A number as a table shows it: thousands separated, floats to 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


class Bench:
    """The curves' view of the private server: a client, an app, the benchmark queue and its keys."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.url = server.url
        self.client: redis.Redis = server.client()
        self.app = Delayed(self.url, imports=[pydelayed_peer.MODULE], queue=QUEUE)
        self.queue = self.app.queue(QUEUE)
        self.broker = self.app.broker(QUEUE)
        self.keys = QueueKeys.for_queue(QUEUE)
        self.task = self.app.serializer.dumps(TASK)

    def reset(self) -> None:
        """An empty database and an empty SLOWLOG."""
        self.client.flushall()
        self.client.slowlog_reset()

    def env(self) -> dict[str, str]:
        """Environment of the processes the curves start (workers, the CLI)."""
        return {**os.environ, URL_VARIABLE: self.url, "PYTHONPATH": str(harness.ROOT)}

    def start_workers(self, processes: int = 1, slots: int = 1, prefetch: int = 1) -> list[Any]:
        """``processes`` benchmark workers (thread executor), pinned like this process."""
        argv = [sys.executable, "-m", pydelayed_peer.MODULE, "thread", str(slots), str(prefetch)]
        return harness.start_processes([argv] * processes, self.env())

    def pending(self) -> int:
        """Tasks of the benchmark queue not started yet or running: its length plus its held entries."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(self.keys.queue)
            pipe.hlen(self.keys.processing)
            length, held = pipe.execute()
        return int(length) + int(held)

    def server_ms(self) -> int:
        """The server's clock, unix ms (due times follow it)."""
        seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000


#: SLOWLOG threshold of the measurements, in microseconds: far above a script's inner commands (about
#: 1 us each, which Redis 7 logs too when the threshold is 0, slowing the script down), far below the
#: 5 ms target
SLOWLOG_THRESHOLD_US = 100


@contextmanager
def slowlog_over(client: redis.Redis, micros: int = SLOWLOG_THRESHOLD_US) -> Iterator[list[dict[str, Any]]]:
    """Log every command slower than ``micros`` for the block; the list yielded is filled with the
    entries at its end. The old settings come back afterwards."""
    old = {name: str(client.config_get(name)[name]) for name in ("slowlog-log-slower-than", "slowlog-max-len")}
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()
    client.config_set("slowlog-log-slower-than", micros)
    entries: list[dict[str, Any]] = []
    try:
        yield entries
    finally:
        client.config_set("slowlog-log-slower-than", old["slowlog-log-slower-than"])
        entries += client.slowlog_get(-1)
        client.config_set("slowlog-max-len", old["slowlog-max-len"])
        client.slowlog_reset()


def redis_cpu(client: redis.Redis) -> float:
    """CPU seconds redis-server has used (user + system), from INFO cpu: time it was preempted does not
    count, unlike SLOWLOG's durations."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


@contextmanager
def cpu_per_call(client: redis.Redis, name: str) -> Iterator[list[float]]:
    """While the block runs, every call of ``delayed_redis.scripts.<name>`` is bracketed by INFO cpu;
    the list yielded gets each call's Redis CPU microseconds (the two INFO calls' own share included:
    a few tens of microseconds)."""
    from delayed_redis import scripts

    original = getattr(scripts, name)
    costs: list[float] = []

    def measured(*args: Any) -> Any:
        before = redis_cpu(client)
        try:
            return original(*args)
        finally:
            costs.append((redis_cpu(client) - before) * 1e6)

    setattr(scripts, name, measured)
    try:
        yield costs
    finally:
        setattr(scripts, name, original)


def script_stats(client: redis.Redis) -> tuple[int, int]:
    """Script calls (EVALSHA and EVAL) so far, and the microseconds Redis spent in them (commandstats)."""
    stats = client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += int(stats[name]["usec"])
    return calls, usec


def command_text(entry: dict[str, Any]) -> str:
    """A SLOWLOG entry's command line as text."""
    command = entry["command"]
    return command.decode(errors="replace") if isinstance(command, bytes) else str(command)


def durations(entries: list[dict[str, Any]], *words: str) -> list[int]:
    """Microseconds of the logged commands whose text contains every one of ``words`` (case-insensitive)."""
    wanted = [word.lower() for word in words]
    return [int(entry["duration"]) for entry in entries
            if all(word in command_text(entry).lower() for word in wanted)]


def timed(action: Callable[[], Any]) -> float:
    """Seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    """The median, or 0 for no values."""
    return statistics.median(values) if values else 0.0
