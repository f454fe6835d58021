"""What a user's admin command costs from the shell: ``delayed info`` and ``delayed dead list`` on an empty
queue and on a big one, for one or several source trees measured in turn (before/after a change).

    python -m bench.cli_start redis://127.0.0.1:PORT [--tree DIR ...] [--fill] [--runs 20]

``--fill`` first puts 1M waiting tasks and 10k dead letters in queue ``big`` (bench/curves_fill.py).
Each tree runs with ``PYTHONPATH=DIR`` (default: this checkout). Per tree and command it prints the
median in-process ``main()`` wall and CPU time (20 warm runs in one process: the command's own work,
imports done) and the median wall and CPU time of the ``delayed`` subprocess, the trees' runs interleaved so that the
load of a shared machine falls on each alike. It also prints the floor no pydelayed change can go under:
the same interpreter importing redis-py and pluggy and sending one PING.

Each tree's packages are compiled to bytecode first, as ``pip install`` does for a user: with
``PYTHONDONTWRITEBYTECODE=1`` in the environment (as on the project's machines) a source tree is
otherwise compiled again by every run, which would be measured as start-up time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what the ``delayed`` console script runs, for the tree on the path (whose entry point may differ from
#: the installed script's: ``main`` before ``console_main``)
DELAYED = ("import sys\nfrom delayed_core.cli import main\n"
           "sys.exit(getattr(main, 'console_main', main.main)())")
COMMANDS = {"info": ["info"], "dead list": ["dead", "list"]}
PACKAGES = ("delayed_core", "delayed_redis", "delayed_plugins")
#: the working directory of every run: ``delayed`` puts its working directory first on the path, so a run
#: from a checkout would import its modules whatever PYTHONPATH says (and read its pyproject.toml)
EMPTY_DIR = tempfile.mkdtemp(prefix="cli-start-")
#: what every command of any tree pays: the interpreter, redis-py (which imports asyncio and
#: importlib.metadata itself), pluggy and msgpack, and one round trip
FLOOR = "import sys, msgpack, pluggy, redis; redis.Redis.from_url(sys.argv[1]).ping()"
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


def tree_env(tree: str | None) -> dict[str, str]:
    """The environment of a run of ``tree``."""
    return {**os.environ, "PYTHONPATH": tree} if tree else dict(os.environ)


def compile_tree(tree: str) -> None:
    """Write the bytecode of ``tree``'s packages (into ``__pycache__``, ignored by git)."""
    for package in PACKAGES:
        compileall.compile_dir(str(Path(tree) / package), quiet=1)


def timed(command: list[str], tree: str | None = None) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run of ``command``, with ``tree`` on the path if given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=tree_env(tree), cwd=EMPTY_DIR, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and median CPU of ``samples``."""
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def in_process(tree: str, url: str) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command's ``main()`` in one process of ``tree``."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, json.dumps(argvs(url))], env=tree_env(tree),
                         cwd=EMPTY_DIR, check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def as_subprocess(trees: list[str], url: str, runs: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(tree, label) -> median (wall ms, CPU ms) of the ``delayed`` subprocess, trees interleaved; the
    floor under ``("", "floor")``."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        samples.setdefault(("", "floor"), []).append(timed([sys.executable, "-c", FLOOR, url]))
        for label, argv in argvs(url).items():
            for tree in trees:
                samples.setdefault((tree, label), []).append(timed([sys.executable, "-c", DELAYED, *argv], tree))
    return {key: medians(values) for key, values in samples.items()}


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
    for tree in trees:
        compile_tree(tree)
    print(f"load average {os.getloadavg()[0]:.1f} at start")
    main_ms = {tree: in_process(tree, args.url) for tree in trees}
    wall = as_subprocess(trees, args.url, args.runs)
    floor_wall, floor_cpu = wall.pop(("", "floor"))
    print(f"floor (python, import redis, pluggy, msgpack, PING): wall {floor_wall:.0f} ms (CPU {floor_cpu:.0f} ms), "
          "median")
    for (tree, label), (wall_ms, cpu_ms) in wall.items():
        main_wall, main_cpu = main_ms[tree][label]
        print(f"{tree}: delayed {label}: main() {main_wall:.1f} ms (CPU {main_cpu:.1f} ms), subprocess wall "
              f"{wall_ms:.0f} ms (CPU {cpu_ms:.0f} ms), medians")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    os.rmdir(EMPTY_DIR)


if __name__ == "__main__":
    main()
