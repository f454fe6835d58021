"""Turning measurements into text: the run's header, one line per measurement, targets and ratios."""

from __future__ import annotations

import platform
import statistics
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import TYPE_CHECKING, Any

import redis

from bench import harness

if TYPE_CHECKING:
    from bench.run import Measurement

#: (peer, key) of a pydelayed row -> (minimum, maximum) the project set for it
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "enqueue": (8000, None),
    "enqueue_many:1000": (150000, None),
    "enqueue_many:10000": (150000, None),
    "drain:0": (5000, None),
    "latency": (None, 0.5),
    "latency/p99_ms": (None, 2.0),
    "idle:1": (None, 1.0),
    "idle:4": (None, 1.0),
}
#: pydelayed row -> (peer, peer row, factor): pydelayed must reach factor x the peer's figure
RATIO_TARGETS = {
    "drain:2": ("rq", "drain:0", 4.0),
    "drain:3": ("celery", "drain:0", 2.0),
}
#: the peer whose rows are pydelayed with tracking and retries on (bench/peers/pydelayed_features_peer.py)
FEATURES = "pydelayed-features"
#: headline rows, measured with features on and off -> (label, factor): with features on, pydelayed must
#: reach factor x the best peer's figure (issue 16: keep the lead while features land)
HEADLINES = {
    "enqueue": ("enqueue (single calls)", 1.3),
    "drain:0": ("drain: thread, 1 slot", 2.5),
}


def is_pydelayed(peer: str) -> bool:
    """pydelayed itself, with its features off (``pydelayed``) or on (``pydelayed-features``)."""
    return peer in ("pydelayed", FEATURES)


def environment(client: redis.Redis) -> dict[str, str]:
    """Versions that matter for the figures."""
    versions = {"python": platform.python_version(), "redis-server": str(client.info("server")["redis_version"])}
    for dist in ("redis", "hiredis", "msgpack"):
        try:
            versions[dist] = dist_version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def header(versions: dict[str, str], reps: int, quick: bool) -> str:
    """The first lines of the output."""
    placement = (f"redis-server pinned to CPU {harness.SERVER_CPU}, clients and workers to CPU "
                 f"{harness.CLIENT_CPU}")
    mode = "quick (smoke) mode, " if quick else ""
    return (f"pydelayed benchmark: {mode}{reps} repetition(s), median [min-max]; {placement}\n"
            + ", ".join(f"{name} {value}" for name, value in versions.items()))


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def spread(values: list[float]) -> str:
    """``median [min-max]``."""
    return f"{_fmt(statistics.median(values))} [{_fmt(min(values))}-{_fmt(max(values))}]"


def line(row: Measurement) -> str:
    """One measurement as a line of text."""
    head = f"{row.peer:<18} {row.label:<50}"
    if row.missing:
        return f"{head} {row.missing}"
    text = f"{head} {spread(row.values):>28} {row.unit}"
    for name, values in row.extra.items():
        if isinstance(values[0], int | float) and name != "samples":
            text += f"; {name} {spread(values)}"
        elif isinstance(values[0], dict):
            text += f"; {name} " + " ".join(f"{cmd}={count:g}" for cmd, count in values[-1].items())
    return text


def _median(rows: list[Measurement], peer: str, key: str) -> float | None:
    for row in rows:
        if row.peer == peer and row.values and not row.missing:
            if row.key == key:
                return statistics.median(row.values)
            metric, _, extra = key.partition("/")
            if row.key == metric and extra in row.extra:
                return statistics.median(row.extra[extra])
    return None


def summary(rows: list[Measurement]) -> str:
    """Targets met or missed, and pydelayed / peer ratios for comparable rows."""
    out = ["", "targets (pydelayed, medians):"]
    for key, (low, high) in TARGETS.items():
        value = _median(rows, "pydelayed", key)
        if value is None:
            out.append(f"  {key:<22} not measured")
            continue
        ok = (low is None or value >= low) and (high is None or value <= high)
        bound = f">= {low:g}" if low is not None else f"<= {high:g}"
        out.append(f"  {key:<22} {_fmt(value):>10}  target {bound:<10} {'met' if ok else 'MISSED'}")
    for key, (peer, peer_key, factor) in RATIO_TARGETS.items():
        ours, theirs = _median(rows, "pydelayed", key), _median(rows, peer, peer_key)
        if ours is None or theirs is None:
            out.append(f"  {key:<22} vs {peer} {peer_key}: not measured")
            continue
        ratio = ours / theirs
        out.append(f"  {key:<22} {ratio:>9.1f}x {peer} {peer_key}  target >= {factor:g}x "
                   f"{'met' if ratio >= factor else 'MISSED'}")
    out += headlines(rows)
    out.append("ratios pydelayed / peer (medians):")
    labels = {row.label: row.key for row in rows if row.peer == "pydelayed"}
    for row in rows:
        if is_pydelayed(row.peer) or not row.values:
            continue
        ours_key = labels.get(f"drain: {row.versus}", "") if row.versus else row.key
        ours, theirs = _median(rows, "pydelayed", ours_key), statistics.median(row.values)
        if ours is not None and theirs:
            out.append(f"  {row.peer:<10} {row.label:<45} {ours / theirs:>7.1f}x  (pydelayed {ours_key})")
    return "\n".join(out)


def _best_peer(rows: list[Measurement], key: str, label: str) -> tuple[str, float] | None:
    """The fastest peer's (name, median) for a headline: its row of that key, or its drain compared with
    the pydelayed drain ``label``."""
    best: tuple[str, float] | None = None
    for row in rows:
        if is_pydelayed(row.peer) or not row.values or row.missing:
            continue
        # A drain is compared with the pydelayed drain it names as its counterpart.
        compared = f"drain: {row.versus}" == label if key.startswith("drain") else row.key == key
        if compared:
            value = statistics.median(row.values)
            if best is None or value > best[1]:
                best = (f"{row.peer} {row.label}", value)
    return best


def headlines(rows: list[Measurement]) -> list[str]:
    """Single enqueue and 1-slot drain with features off and on, each against the best peer."""
    out = [f"features off (pydelayed) and on ({FEATURES}: tracking, retry=3) against the best peer (medians):"]
    for key, (label, factor) in HEADLINES.items():
        off, on = _median(rows, "pydelayed", key), _median(rows, FEATURES, key)
        best = _best_peer(rows, key, label)
        text = f"  {label:<24} off {_fmt(off) if off else 'not measured'}, on {_fmt(on) if on else 'not measured'}"
        if off and on:
            text += f" ({on / off:.2f}x off)"
        if best is None:
            out.append(f"{text}; no peer measured")
            continue
        text += f"; best peer {best[0]} {_fmt(best[1])}:"
        if off:
            text += f" off {off / best[1]:.1f}x"
        if on:
            verdict = "met" if on / best[1] >= factor else "MISSED"
            text += f" on {on / best[1]:.1f}x  target on >= {factor:g}x {verdict}"
        out.append(text)
    return out


def as_dict(row: Measurement) -> dict[str, Any]:
    """A row for the JSON output, with its median and spread."""
    data: dict[str, Any] = {"peer": row.peer, "key": row.key, "label": row.label, "unit": row.unit, "n": row.n,
                            "values": row.values, "extra": row.extra}
    if row.missing:
        data["missing"] = row.missing
    elif row.values:
        summary_ = harness.Summary.of(row.values)
        data.update(median=summary_.median, min=summary_.low, max=summary_.high)
    return data


def markdown(data: dict[str, Any]) -> str:
    """The results table of a ``--json`` file, as Markdown (for docs/benchmarks.md)."""
    out = ["| queue | measurement | median | min-max | unit | N | runs |",
           "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for row in data["rows"]:
        if "median" not in row:
            out.append(f"| {row['peer']} | {row['label']} | {row.get('missing', 'not measured')} | | | | |")
            continue
        values = row["values"]
        out.append(f"| {row['peer']} | {row['label']} | {_fmt(row['median'])} | {_fmt(min(values))}-"
                   f"{_fmt(max(values))} | {row['unit']} | {row['n'] or ''} | {len(values)} |")
        p99 = row["extra"].get("p99_ms")
        if p99:
            out.append(f"| {row['peer']} | enqueue-to-start latency p99 | {_fmt(statistics.median(p99))} | "
                       f"{_fmt(min(p99))}-{_fmt(max(p99))} | ms | {row['n']} | {len(p99)} |")
    return "\n".join(out)


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
