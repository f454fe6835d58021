"""The scaling-curve benchmark (bench/curves.py) runs end to end at small sizes and prints every table:
it fails on a crash, never on a figure (the machine is shared; speed is measured, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import require_redis_server

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(120)]


def test_quick_curves_print_every_table(tmp_path: Path) -> None:
    require_redis_server()
    out_json = tmp_path / "curves.json"
    # every section, at sizes that take seconds
    done = subprocess.run([sys.executable, "bench/curves.py", "--quick", "--json", str(out_json)],
                          cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for title in ("Queue depth: single enqueue and 1-slot drain", "Scheduled enqueue rate",
                  "Promotion of 1,000 tasks due at the same ms among 20,000 scheduled",
                  "Sweep: 500 tasks held by live ids, 50 by dead ids", "Redis memory per item",
                  "Administration on a queue of 20,000 waiting tasks"):
        assert f"### {title}" in out, (title, out)
    assert "checked each run: exactly the 50 dead ids' tasks requeued" in out
    tables = json.loads(out_json.read_text())["tables"]
    assert all(table["rows"] for table in tables)
    assert "Traceback" not in done.stderr
