"""The benchmark: pydelayed and its peers, measured side by side against one private, pinned redis-server.

Usage: ``.venv/bin/python bench/run.py [--quick] [--only NAME[,NAME]] [--reps N] [--json out.json]``.

``pydelayed-features`` measures pydelayed with task tracking and retries on (``@app.task(retry=3)``,
``.delay()``) beside the plain rows, which are the features-off figures.

Each measurement runs in a fresh process (``bench/measure.py``) pinned to CPU 1 while redis-server is
pinned to CPU 0; the database is flushed before each one. Peers run under ``bench/.venv-peers`` when it
exists (see ``docs/benchmarks.md``), else under this interpreter, and are skipped when not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, report
from bench.peers import PEER_MODULES
from bench.peers.base import URL_VARIABLE

PEERS_VENV_PYTHON = harness.ROOT / "bench" / ".venv-peers" / "bin" / "python"
#: (full, quick) sizes
ENQUEUE_N = (5000, 300)
PEER_ENQUEUE_N = (2000, 300)
ENQUEUE_MANY_N = (100000, 10000)
PEER_ENQUEUE_MANY_N = (20000, 10000)
LATENCY_N = (500, 20)
IDLE_SECONDS = (10, 2)
IDLE_SLOTS = (1, 4)
MEASURE_TIMEOUT = 900


@dataclass
class Measurement:
    """One row of the results: a metric of one peer, measured ``reps`` times."""

    peer: str
    key: str
    label: str
    unit: str
    n: int
    values: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    missing: str = ""
    #: for a peer's drain: the label of the pydelayed drain it is compared with
    versus: str = ""


def interpreter(peer: str) -> str:
    """pydelayed (features off and on) runs under this venv; the peers under their own venv when it exists."""
    if not report.is_pydelayed(peer) and PEERS_VENV_PYTHON.exists():
        return str(PEERS_VENV_PYTHON)
    return sys.executable


def run_measure(server: harness.PinnedRedisServer, peer: str, metric: str, n: int = 0) -> dict[str, Any]:
    """One ``bench.measure`` process, pinned to the client CPU; its JSON answer."""
    argv = harness.pinned([interpreter(peer), "-m", "bench.measure", peer, metric, str(n)], harness.CLIENT_CPU)
    env = {**os.environ, URL_VARIABLE: server.url, "PYTHONPATH": str(harness.ROOT)}
    done = subprocess.run(argv, cwd=harness.ROOT, env=env, capture_output=True, text=True,
                          timeout=MEASURE_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{peer} {metric} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def schedule(peer: str, plan: dict[str, Any], quick: bool) -> list[Measurement]:
    """The measurements a peer's plan allows, each with its task count."""
    size = 1 if quick else 0
    single_n = ENQUEUE_N[size] if report.is_pydelayed(peer) else PEER_ENQUEUE_N[size]
    rows = [Measurement(peer, "enqueue", "enqueue (single calls)", "calls/s", single_n)]
    # The peers' batch APIs run at a few thousand tasks/s: a smaller N keeps their rows to seconds.
    many_n = ENQUEUE_MANY_N[size] if peer == "pydelayed" else PEER_ENQUEUE_MANY_N[size]
    rows += [Measurement(peer, f"enqueue_many:{batch}", f"enqueue_many, batches of {batch}", "tasks/s",
                         many_n) for batch in plan["batches"]]
    executors = plan.get("executors")
    for index, drain in enumerate(plan["drains"]):
        row = Measurement(peer, f"drain:{index}", f"drain: {drain['label']}", "tasks/s", drain["n"][size])
        row.versus = drain["versus"]
        executor = drain["variant"].split(":")[0]
        if executors is not None and executor not in executors:
            row.missing = f"not available (executor {executor!r} is not registered)"
        rows.append(row)
    if "latency" in plan["extras"]:
        rows.append(Measurement(peer, "latency", "enqueue-to-start latency p50", "ms", LATENCY_N[size]))
    if "rss" in plan["extras"]:
        rows.append(Measurement(peer, "rss", "idle worker RSS (thread, 1 slot)", "MiB", 0))
    if "idle" in plan["extras"]:
        rows += [Measurement(peer, f"idle:{slots}", f"idle Redis round trips/s per slot ({slots} slot(s))",
                             "trips/s", IDLE_SECONDS[size]) for slots in IDLE_SLOTS]
    return rows


def measure_once(server: harness.PinnedRedisServer, row: Measurement) -> None:
    """One repetition of one row; a failure marks the row instead of ending the run."""
    server.client().flushall()
    try:
        answer = run_measure(server, row.peer, row.key, row.n)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        # One broken peer or mode must not cost the figures of the others: report it and go on.
        row.missing = "FAILED: " + str(exc).strip().splitlines()[-1]
        print(str(exc)[-2000:], file=sys.stderr)
        return
    row.values.append(answer["value"])
    for name, value in answer["extra"].items():
        row.extra.setdefault(name, []).append(value)


def measure_all(server: harness.PinnedRedisServer, rows: list[Measurement], reps: int) -> None:
    """Fill every row's values, repetition by repetition across all rows and peers, so that a change of
    load on the machine during the run touches every queue alike. The idle count is one long window and
    is taken once."""
    for rep in range(reps):
        print(f"repetition {rep + 1}/{reps} ...", file=sys.stderr, flush=True)
        for row in rows:
            if not row.missing and (rep == 0 or not row.key.startswith("idle")):
                measure_once(server, row)
            if rep == reps - 1:
                print(report.line(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse options, start redis-server, measure, print (and save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N and one repetition (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated peer names: " + ", ".join(PEER_MODULES))
    parser.add_argument("--reps", type=int, default=0, help="repetitions per measurement (default 5, quick 1)")
    parser.add_argument("--json", dest="json_path", help="also write the results to this JSON file")
    options = parser.parse_args(argv)
    names = [name for name in options.only.split(",") if name] or list(PEER_MODULES)
    unknown = sorted(set(names) - set(PEER_MODULES))
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEER_MODULES)}")
    reps = options.reps or (1 if options.quick else 5)

    server = harness.PinnedRedisServer().start()
    try:
        versions = report.environment(server.client())
        print(report.header(versions, reps, options.quick), flush=True)
        rows: list[Measurement] = []
        for name in names:
            try:
                plan = run_measure(server, name, "plan")
            except RuntimeError as exc:
                print(f"{name}: FAILED to start: {str(exc).strip().splitlines()[-1]}", flush=True)
                continue
            if not plan["available"]:
                print(f"{name}: not installed ({plan['reason']})", flush=True)
                continue
            versions[name] = plan["version"]
            rows += schedule(name, plan, options.quick)
        measure_all(server, rows, reps)
    finally:
        server.cleanup()
    print(report.summary(rows), flush=True)
    if options.json_path:
        data = {"versions": versions, "reps": reps, "quick": options.quick, "machine": platform.platform(),
                "rows": [report.as_dict(row) for row in rows]}
        Path(options.json_path).write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
