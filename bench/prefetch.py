"""1-slot no-op drain with ``delayed worker --prefetch K`` against K = 1, in one run.

Usage: ``.venv/bin/python bench/prefetch.py [--tasks 20000] [--reps 3] [--prefetch 1,8,32] [--against DIR]``.

redis-server is pinned to CPU 0 (``taskset -c 0``) and the worker to CPU 1, so that the figures compare
round trips rather than CPU contention between the two. Each repetition starts a 1-slot worker on an empty
queue, enqueues the no-op tasks in one batch, and times until the queue is empty and nothing is held
(``bench/processes.py`` does the timing). Round trips per task are the worker's EVALSHA and BLPOP calls
from ``INFO commandstats``. The values of K take turns (1, 8, 32, 1, 8, 32 ...), so that each sees the
same changes of load when the machine is shared; the load average is printed at the end.

``--against DIR`` also runs the worker of another checkout with its own ``.venv`` (``/work/main``, or a
``git worktree add`` with ``python3 -m venv .venv && .venv/bin/pip install -e .``), taking turns with
this one's, to compare two versions in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.processes import drain_once, interleaved, report


@contextlib.contextmanager
def worker_code(checkout: Path | None) -> Iterator[None]:
    """Run the workers started inside the block from ``checkout``'s code (this checkout's when None)."""
    if checkout is None:
        yield
        return
    ours = harness.ROOT
    harness.ROOT = checkout  # drain_once starts ROOT/.venv/bin/delayed with PYTHONPATH=ROOT
    try:
        yield
    finally:
        harness.ROOT = ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prefetch", default="1,8,32")
    parser.add_argument("--against", type=Path, help="another checkout whose worker takes turns with this one's")
    args = parser.parse_args(argv)
    against = args.against.resolve() if args.against else None
    if against is not None and not (against / ".venv" / "bin" / "delayed").exists():
        parser.error(f"--against {args.against}: no .venv/bin/delayed there (a checkout with its own venv)")
    server = harness.PinnedRedisServer().start()
    try:
        values = [int(k) for k in args.prefetch.split(",")]
        # K for this checkout, -K for the other one: interleaved() takes them in turns.
        runs = [sign * k for k in values for sign in ((1, -1) if against else (1,))]

        def drain(value: int) -> tuple[float, float, float, float]:
            with worker_code(against if value < 0 else None):
                return drain_once(server, 1, args.tasks, ("--prefetch", str(abs(value))), harness.CLIENT_CPU,
                                  abs(value))

        results = interleaved(runs, args.reps, drain)
        report("--prefetch", {k: results[k] for k in values})
        if against is not None:
            print(f"the same, worker from {against}:")
            report("--prefetch", {k: results[-k] for k in values})
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
