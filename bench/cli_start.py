"""What a user's admin command costs from the shell: ``delayed info`` and ``delayed dead list`` on an empty
queue and on a big one, for one or several versions of pydelayed measured in turn (before/after a change).

    python -m bench.cli_start redis://127.0.0.1:PORT [--tree DIR ...] [--venv DIR ...] [--fill] [--runs 20]

``--fill`` first puts 1M waiting tasks and 10k dead letters in queue ``big`` (bench/curves_fill.py).
A version is a source tree, run by this interpreter with ``PYTHONPATH=DIR`` (default: this checkout), or
a virtual environment with pydelayed installed, run through its own ``delayed`` script: what a user
has after ``pip install pydelayed`` (no dev extras, bytecode compiled by pip). Per version and command it
prints the median in-process ``main()`` wall and CPU time (20 warm runs in one process: the command's
own work, imports done) and the median wall and CPU time of the ``delayed`` subprocess, the versions'
runs interleaved so that the load of a shared machine falls on each alike. It also prints the floor no
pydelayed change can go under: the first version's interpreter importing redis-py and pluggy and
sending one PING.

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what the ``delayed`` console script runs, for a tree on the path (its entry point may differ from the
#: installed script's: ``main`` before ``console_main``)
DELAYED = ("import sys\nfrom delayed_core.cli import main\n"
           "sys.exit(getattr(main, 'console_main', main.main)())")
COMMANDS = {"info": ["info"], "dead list": ["dead", "list"]}
PACKAGES = ("delayed_core", "delayed_redis", "delayed_plugins")
#: the working directory of every run: ``delayed`` puts its working directory first on the path, so a run
#: from a checkout would import its modules whatever PYTHONPATH says (and read its pyproject.toml)
EMPTY_DIR = tempfile.mkdtemp(prefix="cli-start-")
#: what every command of any version pays: the interpreter, redis-py (which imports asyncio and
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


@dataclass(frozen=True)
class Version:
    """One version of pydelayed to measure: a source tree or an installed virtual environment."""

    path: str
    installed: bool

    @property
    def python(self) -> str:
        """Its interpreter: the venv's, or this one for a tree."""
        return str(Path(self.path) / "bin" / "python") if self.installed else sys.executable

    @property
    def env(self) -> dict[str, str]:
        """The environment of its runs."""
        return dict(os.environ) if self.installed else {**os.environ, "PYTHONPATH": self.path}

    def delayed(self, argv: list[str]) -> list[str]:
        """The command line of ``delayed ARGV``."""
        if self.installed:
            return [str(Path(self.path) / "bin" / "delayed"), *argv]
        return [self.python, "-c", DELAYED, *argv]


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


def compile_tree(tree: str) -> None:
    """Write the bytecode of ``tree``'s packages (into ``__pycache__``, ignored by git)."""
    for package in PACKAGES:
        compileall.compile_dir(str(Path(tree) / package), quiet=1)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=EMPTY_DIR, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and median CPU of ``samples``."""
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def in_process(version: Version, url: str) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command's ``main()`` in one process of ``version``."""
    out = subprocess.run([version.python, "-c", IN_PROCESS, json.dumps(argvs(url))], env=version.env,
                         cwd=EMPTY_DIR, check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def as_subprocess(versions: list[Version], url: str, runs: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(version, label) -> median (wall ms, CPU ms) of the ``delayed`` subprocess, versions interleaved;
    the floor under ``("", "floor")``, the interpreter alone under ``("", "python")``."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        samples.setdefault(("", "python"), []).append(timed([versions[0].python, "-c", "pass"], dict(os.environ)))
        samples.setdefault(("", "floor"), []).append(timed([versions[0].python, "-c", FLOOR, url], dict(os.environ)))
        for label, argv in argvs(url).items():
            for version in versions:
                samples.setdefault((version.path, label), []).append(timed(version.delayed(argv), version.env))
    return {key: medians(values) for key, values in samples.items()}


def main() -> None:
    """Measure and print one line per tree and command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--tree", action="append", default=[], help="source tree to measure (repeatable)")
    parser.add_argument("--venv", action="append", default=[],
                        help="virtual environment with pydelayed installed, to measure (repeatable)")
    parser.add_argument("--fill", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    versions = [Version(path, installed=False) for path in args.tree]
    versions += [Version(path, installed=True) for path in args.venv]
    versions = versions or [Version(str(ROOT), installed=False)]
    if args.fill:
        fill(args.url)
    for version in versions:
        if not version.installed:
            compile_tree(version.path)
    print(f"load average {os.getloadavg()[0]:.1f} at start")
    main_ms = {version.path: in_process(version, args.url) for version in versions}
    wall = as_subprocess(versions, args.url, args.runs)
    for key, what in (("python", "python -c pass"), ("floor", "floor: python, import redis, pluggy, msgpack, PING")):
        floor_wall, floor_cpu = wall.pop(("", key))
        print(f"{what}: wall {floor_wall:.0f} ms (CPU {floor_cpu:.0f} ms), medians")
    for (path, label), (wall_ms, cpu_ms) in wall.items():
        main_wall, main_cpu = main_ms[path][label]
        print(f"{path}: delayed {label}: main() {main_wall:.1f} ms (CPU {main_cpu:.1f} ms), subprocess wall "
              f"{wall_ms:.0f} ms (CPU {cpu_ms:.0f} ms), medians")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    os.rmdir(EMPTY_DIR)


if __name__ == "__main__":
    main()
