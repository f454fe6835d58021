"""One measurement in a fresh process: ``python -m bench.measure PEER METRIC [N]``; prints one JSON line.

``run.py`` starts this under the peer's interpreter (pydelayed's venv or ``bench/.venv-peers``), pinned
to the client CPU. METRIC is ``plan`` (is the peer installed, its version and what it can measure),
``enqueue``, ``enqueue_many:BATCH``, ``drain:INDEX`` (into the peer's ``drains``), ``latency``, ``rss``
or ``idle:SLOTS``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from typing import Any

from bench.peers import PEER_MODULES
from bench.peers.base import Peer


def plan(peer: Peer) -> dict[str, Any]:
    """What ``run.py`` needs to schedule the peer's measurements."""
    info: dict[str, Any] = {
        "available": True,
        "version": peer.version(),
        "batches": list(peer.batches),
        "drains": [dataclasses.asdict(drain) for drain in peer.drains],
        "extras": [name for name in ("latency", "rss", "idle") if hasattr(peer, f"measure_{name}")],
    }
    executors = getattr(peer, "executors", None)
    if executors is not None:
        info["executors"] = executors()
    return info


def measure(peer: Peer, metric: str, n: int) -> dict[str, Any]:
    """Run ``metric`` once and return ``{"value": ..., "extra": ...}``."""
    kind, _, arg = metric.partition(":")
    if kind == "enqueue":
        result = peer.measure_enqueue(n)
    elif kind == "enqueue_many":
        result = peer.measure_enqueue_many(n, int(arg))
    elif kind == "drain":
        result = peer.measure_drain(peer.drains[int(arg)], n)
    elif kind == "latency":
        result = peer.measure_latency(n)  # type: ignore[attr-defined]
    elif kind == "rss":
        result = peer.measure_rss()  # type: ignore[attr-defined]
    elif kind == "idle":
        result = peer.measure_idle(int(arg), n)  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown metric {metric!r}")
    return {"value": result.value, "extra": result.extra}


def main(argv: list[str]) -> None:
    """Entry point; a peer whose library is missing answers ``plan`` with ``available: false``."""
    name, metric = argv[0], argv[1]
    n = int(argv[2]) if len(argv) > 2 else 0
    try:
        module = importlib.import_module(PEER_MODULES[name])
    except ImportError as exc:
        print(json.dumps({"available": False, "reason": str(exc)}))
        return
    peer = module.PEER()
    print(json.dumps(plan(peer) if metric == "plan" else measure(peer, metric, n)))


if __name__ == "__main__":
    main(sys.argv[1:])
