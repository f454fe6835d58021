"""The benchmark runs end to end in quick mode and prints every pydelayed figure, with features off and
on, and the headline comparison (values not checked: it fails on a crash, not on speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import require_redis_server

ROOT = Path(__file__).resolve().parent.parent
FIGURE_VALUE = r"\d[\d,.]*(e[+-]?\d+)?"
FIGURE = FIGURE_VALUE + r" \[[\d,.e+-]+-[\d,.e+-]+\]"

# Generous: quick mode takes about 40 s on an idle 2-core machine, several times that on a loaded one.
pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(330)]


def test_quick_run_prints_every_figure(tmp_path: Path) -> None:
    require_redis_server()
    out_json = tmp_path / "out.json"
    done = subprocess.run([sys.executable, "bench/run.py", "--quick", "--only", "pydelayed,pydelayed-features",
                           "--json", str(out_json)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for label, unit in [
        ("enqueue (single calls)", "calls/s"),
        ("enqueue_many, batches of 1000", "tasks/s"),
        ("enqueue_many, batches of 10000", "tasks/s"),
        ("drain: thread, 1 slot", "tasks/s"),
        ("drain: thread, 4 slots", "tasks/s"),
        ("drain: 2 processes, thread, 1 slot each", "tasks/s"),
        ("enqueue-to-start latency p50", "ms"),
        ("idle worker RSS (thread, 1 slot)", "MiB"),
        ("idle Redis round trips/s per slot (1 slot(s))", "trips/s"),
    ]:
        assert re.search(rf"pydelayed\s+{re.escape(label)}\s+{FIGURE} {re.escape(unit)}", out), (label, out)
    # fork and subprocess are either measured or reported as missing, never silently dropped
    for executor in ("fork", "subprocess"):
        assert re.search(rf"drain: {executor}\s+({FIGURE} tasks/s|not available)", out), (executor, out)
    # Tracking and retries on: the two headline rows, their record commands, and the comparison.
    for label in ("enqueue (single calls)", "drain: thread, 1 slot"):
        assert re.search(rf"pydelayed-features\s+{re.escape(label)}\s+{FIGURE} ", out), (label, out)
        assert re.search(rf"  {re.escape(label)}\s+off {FIGURE_VALUE}, on {FIGURE_VALUE} \(", out), (label, out)
    assert re.search(r"pydelayed-features\s+enqueue \(single calls\).*rpush=2 .*set=1", out), out
    assert "features off (pydelayed) and on (pydelayed-features: tracking, retry=3) against the best peer" in out
    assert "p99_ms" in out
    assert "targets (pydelayed, medians):" in out
    assert '"peer": "pydelayed"' in out_json.read_text() and '"peer": "pydelayed-features"' in out_json.read_text()


def test_prefetch_figure_runs() -> None:
    require_redis_server()
    done = subprocess.run([sys.executable, "bench/prefetch.py", "--tasks", "300", "--reps", "1", "--prefetch", "1,4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=80, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for k in (1, 4):
        assert re.search(rf"--prefetch +{k}: +\d+ tasks/s .* round trips per task [\d.]+", done.stdout), done.stdout
    assert "ratio --prefetch 4 / 1:" in done.stdout
