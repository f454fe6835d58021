"""1-slot no-op drain with ``delayed worker --prefetch K`` against K = 1, in one run.

Usage: ``.venv/bin/python bench/prefetch.py [--tasks 20000] [--reps 3] [--prefetch 1,8,32]``.

redis-server is pinned to CPU 0 (``taskset -c 0``) and the worker to CPU 1, so that the figures compare
round trips rather than CPU contention between the two. Each repetition starts a 1-slot worker on an empty
queue, enqueues the no-op tasks in one batch, and times until the queue is empty and nothing is held
(``bench/processes.py`` does the timing). Round trips per task are the worker's EVALSHA and BLPOP calls
from ``INFO commandstats``. The values of K take turns (1, 8, 32, 1, 8, 32 ...), so that each sees the
same changes of load when the machine is shared; the load average is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.processes import drain_once, interleaved, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prefetch", default="1,8,32")
    args = parser.parse_args(argv)
    server = harness.PinnedRedisServer().start()
    try:
        values = [int(k) for k in args.prefetch.split(",")]
        report("--prefetch", interleaved(values, args.reps, lambda k: drain_once(
            server, 1, args.tasks, ("--prefetch", str(k)), harness.CLIENT_CPU, k)))
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
