"""The scaling curves' PNG: rates against queue depth, and Redis bytes per item.

matplotlib is a benchmark-only dependency (``pip install -e '.[bench]'``); pydelayed never imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot(depth_points: list[dict[str, float]], memory_rows: list[list[Any]], title: str, path: Path) -> None:
    """Write the PNG: left, enqueue and drain rates by depth (median, min-max bars) and Redis CPU per
    operation (dashed, right axis); right, bytes per item."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    depths = [point["depth"] for point in depth_points]
    for key, label, marker in (("enqueue", "single enqueue (calls/s)", "o"), ("drain", "1-slot drain (tasks/s)", "s")):
        values = [point[key] for point in depth_points]
        spread = [[value - point[f"{key}_low"] for value, point in zip(values, depth_points, strict=True)],
                  [point[f"{key}_high"] - value for value, point in zip(values, depth_points, strict=True)]]
        left.errorbar(depths, values, yerr=spread, marker=marker, capsize=4, label=label)
    cpu = left.twinx()  # Redis CPU per operation: the part the depth could change, less noisy than rates
    for key, label in (("enqueue_cpu_us", "Redis CPU per enqueue (us)"),
                       ("drain_cpu_us", "Redis CPU per drained task (us)")):
        cpu.plot(depths, [point[key] for point in depth_points], linestyle="--", marker="x", label=label)
    cpu.set_ylim(bottom=0, top=max(max(p["enqueue_cpu_us"], p["drain_cpu_us"]) for p in depth_points) * 2.5)
    cpu.set_ylabel("Redis CPU microseconds per operation (dashed)")
    cpu.legend(loc="upper right", fontsize=8)
    left.set_xscale("log")
    left.set_ylim(bottom=0)
    left.set_xlabel("tasks already waiting in the queue")
    left.set_ylabel("per second")
    left.set_title("Rates by queue depth (median, min-max)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(loc="upper left", fontsize=8)
    left.set_ylim(top=max(point[f"{key}_high"] for point in depth_points for key in ("enqueue", "drain")) * 1.35)
    labels = [str(row[0]).split(" (")[0] for row in memory_rows]
    right.barh(labels, [float(row[1]) for row in memory_rows], color="tab:gray")
    for y, row in enumerate(memory_rows):
        right.text(float(row[1]), y, f" {float(row[1]):.0f}", va="center")
    right.set_xlabel("bytes per item (used_memory growth)")
    right.set_title("Redis memory per item")
    right.invert_yaxis()
    right.set_xlim(right=max(float(row[1]) for row in memory_rows) * 1.25)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str]) -> None:
    """``python -m bench.curves_plot CURVES.json OUT.png``: the PNG again from a run's ``--json`` file."""
    data = json.loads(Path(argv[0]).read_text())
    memory = next(table for table in data["tables"] if table["title"].startswith("Redis memory"))
    plot(data["depth_points"], memory["rows"], data["header"], Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
