"""The overview's small throughput chart: point lists for an inline SVG (no script, no library)."""

from __future__ import annotations

from dataclasses import dataclass

from delayed_core.interfaces import Throughput

WIDTH, HEIGHT, PAD = 180, 40, 2


@dataclass(frozen=True)
class Chart:
    """Two polylines on a ``WIDTH`` x ``HEIGHT`` canvas and the numbers a title states."""

    done_points: str
    failed_points: str
    peak: int
    minutes: int
    width: int = WIDTH
    height: int = HEIGHT


def points(values: list[int], peak: int) -> str:
    """SVG polyline points: x spread over the width, y scaled so that ``peak`` touches the top."""
    if not values:
        return ""
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    usable = HEIGHT - 2 * PAD
    return " ".join(f"{PAD + i * step:.1f},{HEIGHT - PAD - (value / peak) * usable:.1f}"
                    for i, value in enumerate(values))


def chart(throughput: Throughput | None) -> Chart | None:
    """The chart of one queue, or None when its broker keeps no counters."""
    if throughput is None or not throughput.minutes:
        return None
    peak = max([*throughput.done, *throughput.failed, 1])
    return Chart(points(throughput.done, peak), points(throughput.failed, peak), peak, len(throughput.minutes))
