"""Scaling curves: does pydelayed's cost stay flat as the work grows? (issue 16, part 1)

Usage: ``.venv/bin/python bench/curves.py [--quick] [--only SECTION[,SECTION]] [--json out.json]
[--markdown out.md] [--plot out.png]``, with sections ``depth`` (queue depth), ``backlog`` (scheduled
backlog), ``sweep`` (many workers), ``memory`` (bytes per item) and ``admin`` (info, dead list and the
dashboard on a big queue). ``--plot`` needs matplotlib: ``pip install -e '.[bench]'``.

Each section runs against a fresh private redis-server pinned to CPU 0; this process and every worker
or CLI process it starts are pinned to CPU 1 (the tool re-runs itself under ``taskset`` when needed).
The full run needs about 1.5 GB of Redis memory (5M waiting tasks) and a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import curves_admin, curves_backlog, curves_depth, curves_memory, curves_sweep, harness
from bench.curves_common import Bench, Table

SECTIONS: dict[str, Callable[[Bench, bool], Any]] = {
    "depth": curves_depth.measure, "backlog": curves_backlog.measure, "sweep": curves_sweep.measure,
    "memory": curves_memory.measure, "admin": curves_admin.measure,
}


def pin_self() -> None:
    """Re-run this process pinned to the client CPU unless it already is (or cannot be)."""
    cpus = os.cpu_count() or 1
    if shutil.which("taskset") is None or cpus <= harness.CLIENT_CPU:
        return
    if os.sched_getaffinity(0) != {harness.CLIENT_CPU}:
        os.execvp("taskset", ["taskset", "-c", str(harness.CLIENT_CPU), sys.executable, *sys.argv])


def commit() -> str:
    """The commit measured (``+dirty`` when the work tree has changes)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=harness.ROOT, capture_output=True, text=True, check=False).stdout
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def run_section(name: str, quick: bool) -> tuple[list[Table], Any]:
    """One section on its own fresh server: its tables and its raw result."""
    server = harness.PinnedRedisServer().start()
    try:
        result = SECTIONS[name](Bench(server), quick)
    finally:
        server.cleanup()
    if isinstance(result, Table):
        return [result], result
    if isinstance(result, tuple):  # depth: (table, points)
        return [result[0]], result
    return list(result), result


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the sections, print (and save) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test; figures meaningless)")
    parser.add_argument("--only", default="", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--json", dest="json_path", help="also write the tables to this JSON file")
    parser.add_argument("--markdown", dest="markdown_path", help="also write the tables to this markdown file")
    parser.add_argument("--plot", dest="plot_path", help="write the PNG (needs depth and memory; matplotlib)")
    options = parser.parse_args(argv)
    names = [name for name in options.only.split(",") if name] or list(SECTIONS)
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if options.plot_path and not {"depth", "memory"} <= set(names):
        parser.error("--plot needs the depth and memory sections")
    pin_self()
    started = time.monotonic()
    header = (f"commit {commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load()} at the start")
    print(header + ("  [QUICK: sizes too small for the figures to mean anything]" if options.quick else ""),
          flush=True)
    tables: list[Table] = []
    raw: dict[str, Any] = {}
    for name in names:
        section_tables, raw[name] = run_section(name, options.quick)
        for table in section_tables:
            print("\n" + table.markdown(), flush=True)
        tables += section_tables
    footer = f"load average {load()} at the end; {time.monotonic() - started:.0f} s in all"
    print("\n" + footer, flush=True)
    if options.markdown_path:
        Path(options.markdown_path).write_text("\n\n".join([header, *(t.markdown() for t in tables), footer]) + "\n")
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(
            {"header": header, "footer": footer, "tables": [t.__dict__ for t in tables],
             "depth_points": raw["depth"][1] if "depth" in raw else []}, indent=2, default=str))
    if options.plot_path:
        from bench.curves_plot import plot
        memory_table = raw["memory"]
        plot(raw["depth"][1], memory_table.rows, header, Path(options.plot_path))
        print(f"plot written to {options.plot_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
