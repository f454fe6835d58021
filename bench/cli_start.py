"""What a user's admin command costs from the shell: ``delayed info`` and ``delayed dead list`` on an empty
queue and on a big one, for one or several source trees measured in turn (before/after a change).

    python -m bench.cli_start redis://127.0.0.1:PORT [--tree DIR ...] [--fill] [--runs 20]

``--fill`` first puts 1M waiting tasks and 10k dead letters in queue ``big`` (bench/curves_fill.py).
Each tree runs with ``PYTHONPATH=DIR`` (default: this checkout). Per tree and command it prints the
median in-process ``main()`` wall and CPU time (20 warm runs in one process: the command's own work,
imports done) and the median wall and CPU time of the ``delayed`` subprocess, the trees' runs interleaved so that the
load of a shared machine falls on each alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DELAYED = str(Path(sys.executable).with_name("delayed"))
COMMANDS = {"info": ["info"], "dead list": ["dead", "list"]}
IN_PROCESS = """
import contextlib, io, json, statistics, sys, time
from delayed_core.cli.main import main
times = {}
for label, argv in json.loads(sys.argv[1]).items():
    walls, cpus = [], []
    for _ in range(21):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            started, cpu = time.perf_counter(), time.process_time()
            main(argv)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
    times[label] = (statistics.median(walls[1:]), statistics.median(cpus[1:]))
print(json.dumps(times))
"""


def argvs(url: str) -> dict[str, list[str]]:
    """Every measured command line, by label."""
    return {f"{label}, {queue} queue": [*args, "--broker", url, "--queue", queue]
            for label, args in COMMANDS.items() for queue in ("empty", "big")}


def fill(url: str) -> None:
    """1M waiting tasks and 10k dead letters in queue ``big``."""
    import redis

    from bench import curves_fill
    from delayed_core.task import PyTask
    from delayed_plugins.msgpack_serializer import MsgpackSerializer
    from delayed_redis.keys import QueueKeys

    client = redis.Redis.from_url(url)
    keys = QueueKeys.for_queue("big")
    from bench.peers import pydelayed_peer

    task = MsgpackSerializer().dumps(PyTask(pydelayed_peer.noop))
    client.delete(keys.queue, keys.notifications, keys.dead)
    curves_fill.fill_waiting(client, keys, task, 1_000_000)
    curves_fill.fill_dead(client, keys, task, 10_000)


def in_process(tree: str, url: str) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command's ``main()`` in one process of ``tree``."""
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, json.dumps(argvs(url))], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def as_subprocess(trees: list[str], url: str, runs: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(tree, label) -> median (wall ms, CPU ms) of the ``delayed`` subprocess, trees interleaved."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for label, argv in argvs(url).items():
            for tree in trees:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run([DELAYED, *argv], env={**os.environ, "PYTHONPATH": tree}, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wall = (time.perf_counter() - started) * 1000
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
                samples.setdefault((tree, label), []).append((wall, cpu))
    return {key: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for key, values in samples.items()}


def main() -> None:
    """Measure and print one line per tree and command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--tree", action="append", help="source tree to measure (repeatable)")
    parser.add_argument("--fill", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    trees = args.tree or [str(ROOT)]
    if args.fill:
        fill(args.url)
    print(f"load average {os.getloadavg()[0]:.1f} at start")
    main_ms = {tree: in_process(tree, args.url) for tree in trees}
    wall = as_subprocess(trees, args.url, args.runs)
    for (tree, label), (wall_ms, cpu_ms) in wall.items():
        main_wall, main_cpu = main_ms[tree][label]
        print(f"{tree}: delayed {label}: main() {main_wall:.1f} ms (CPU {main_cpu:.1f} ms), subprocess wall "
              f"{wall_ms:.0f} ms (CPU {cpu_ms:.0f} ms), medians")
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
