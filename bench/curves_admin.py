"""Administration on a big queue: ``delayed info``, ``delayed dead list`` and the dashboard's pages.

The queue holds ``WAITING`` tasks, ``SCHEDULED`` scheduled ones, ``DEAD`` dead letters and a few tasks
held by live workers. Two timings per CLI command:

- in-process: the command's ``main(argv)`` called in this process (imports done, output thrown away):
  what the command itself costs, broker calls, decoding and printing;
- as a user runs it: the wall time of the installed ``delayed`` subprocess on the big queue, and of the
  same command on an empty queue of the same server, run in turn (interpreter start and imports are in
  both: the difference is what the queue's size costs).

The dashboard's pages are requested in-process through Starlette's test client (no network, no
server), which times the page's reads and its rendering.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
import time
from pathlib import Path

from bench import curves_fill
from bench.cli_start import ROOT, compile_tree
from bench.curves_common import Bench, Table, median
from delayed_core.cli.main import main as cli_main

#: (full, quick, small) sizes: the small queue is measured too, to show the figures do not grow with N
WAITING = (5_000_000, 20_000, 1_000)
SCHEDULED = (10_000, 200, 10)
DEAD = (10_000, 500, 10)
HELD = 8
REPEATS = (5, 1)
DELAYED = str(Path(sys.executable).with_name("delayed"))


def fill(bench: Bench, size: int) -> None:
    """The big queue."""
    bench.reset()
    client, keys, task = bench.client, bench.keys, bench.task
    curves_fill.fill_waiting(client, keys, task, WAITING[size])
    now = bench.server_ms()
    curves_fill.fill_scheduled(client, keys, task, SCHEDULED[size], lambda i: now + 3_600_000 + i)
    curves_fill.fill_dead(client, keys, task, DEAD[size])
    ids = curves_fill.fill_held(client, keys, [task] * HELD, "busy-", ttl=3600)
    client.zadd(keys.workers, {worker_id: now for worker_id in ids})


def in_process(argv: list[str], repeats: int) -> float:
    """Median ms of ``delayed ARGV`` run in this process, output discarded (after one warm-up run)."""
    times = []
    for _ in range(repeats + 1):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            started = time.perf_counter()
            status = cli_main(argv)
            times.append((time.perf_counter() - started) * 1000)
        if status != 0:
            raise RuntimeError(f"delayed {' '.join(argv)} exited with {status}")
    return median(times[1:])


def broker_calls(bench: Bench, command: str, repeats: int) -> float:
    """Median ms of the broker calls the command makes (``info()``; for ``dead list``, its page of 100
    and the count), on a fresh app each time as the CLI has (a new connection included)."""
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        broker = bench.app.broker(bench.keys.queue)
        if command == "dead list":
            broker.dead_letters(0, 99)
        broker.info()
        times.append((time.perf_counter() - started) * 1000)
        broker.client.connection_pool.disconnect()  # type: ignore[attr-defined]
    return median(times[1:])


def as_subprocess(big: list[str], empty: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Median wall ms of the installed ``delayed BIG`` and of ``delayed EMPTY``, run in turn.

    The tree's bytecode is written first: with ``PYTHONDONTWRITEBYTECODE=1`` (set on the project's
    machines) every run would compile our modules from source again, which no installed user pays."""
    compile_tree(str(ROOT))
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for which, argv in enumerate((big, empty)):
            started = time.perf_counter()
            subprocess.run([DELAYED, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
            times[which].append((time.perf_counter() - started) * 1000)
    return median(times[0]), median(times[1])


def dashboard_pages(bench: Bench, repeats: int) -> list[tuple[str, float]]:
    """Median ms of each dashboard page on the big queue (read-only dashboard, test client)."""
    from starlette.testclient import TestClient

    from delayed_dashboard.server import create_app
    from delayed_dashboard.views import digest

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per request otherwise
    newest = bytes(bench.client.lindex(bench.keys.dead, 0) or b"")  # type: ignore[arg-type]
    pages = [("/", "overview"), ("/workers", "workers"), ("/scheduled", "scheduled (50 soonest)"),
             (f"/dead?queue={bench.keys.queue}", "dead letters, first page"),
             (f"/dead?queue={bench.keys.queue}&offset=9000", "dead letters, page at offset 9000"),
             (f"/dead?queue={bench.keys.queue}&func=noop", "dead letters, filtered (window of 1000)"),
             (f"/dead/show?queue={bench.keys.queue}&index=0&digest={digest(newest)}", "one dead letter")]
    client = TestClient(create_app(bench.app, (bench.keys.queue,), read_only=True), base_url="http://127.0.0.1")
    results = []
    for path, label in pages:
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"dashboard {path}: HTTP {response.status_code}")
        results.append((label, median(times[1:])))
    return results


def measure(bench: Bench, quick: bool) -> Table:
    """Every command on a small queue and on the big one; the dashboard's pages on the big one."""
    size = 1 if quick else 0
    repeats = REPEATS[size]
    env = bench.env()
    commands = (("delayed info", ["info"]), ("delayed info --json", ["info", "--json"]),
                ("delayed dead list", ["dead", "list"]))
    small: dict[str, tuple[float, float]] = {}
    fill(bench, 2)
    for label, args in commands:
        argv = [*args, "--broker", bench.url, "--queue", bench.keys.queue]
        small[label] = (broker_calls(bench, label.removeprefix("delayed ").removesuffix(" --json"), repeats),
                        in_process(argv, repeats))
    fill(bench, size)
    table = Table(f"Administration on a queue of {WAITING[size]:,} waiting tasks, {SCHEDULED[size]:,} scheduled, "
                  f"{DEAD[size]:,} dead letters (and on one of {WAITING[2]:,} / {SCHEDULED[2]} / {DEAD[2]})",
                  ["command or page", "broker calls, big (small) queue, ms", "in-process `main()`, big (small), ms",
                   "subprocess wall, big queue / empty queue, ms"])
    for label, args in commands:
        big = [*args, "--broker", bench.url, "--queue", bench.keys.queue]
        empty = [*args, "--broker", bench.url, "--queue", "empty"]
        calls = broker_calls(bench, label.removeprefix("delayed ").removesuffix(" --json"), repeats)
        table.rows.append([label, f"{calls:.1f} ({small[label][0]:.1f})",
                           f"{in_process(big, repeats):.1f} ({small[label][1]:.1f})",
                           "skipped (--quick)" if quick else "{:.0f} / {:.0f}".format(*as_subprocess(big, empty, env,
                                                                                                 repeats))])
    for label, ms in dashboard_pages(bench, repeats):
        table.rows.append([f"dashboard: {label}", "", f"{ms:.1f} (page request, test client)", ""])
    table.notes.append(f"medians of {repeats} runs; the empty queue is `--queue empty` on the same server; "
                       "in-process `main()` includes the CLI's own start (config, plugins, argument parser), "
                       "which does not depend on the queue")
    return table
