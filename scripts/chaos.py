"""Long chaos run: ``python scripts/chaos.py --tasks 50000 --seconds 300 --workers 4``.

Starts its own redis-server on a free port (never a shared one), runs the chaos harness of
``tests/chaos`` (workers SIGKILLed every 5-300 ms and restarted, a sweeper, a producer), then prints tasks,
kills, duplicates and lost. Exits 1 if any task was lost.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import ChaosRun, ChaosSettings
from tests.support.redis_server import RedisServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=50000, help="tasks to enqueue (default 50000)")
    parser.add_argument("--seconds", type=float, default=300, help="length of the kill window (default 300)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--slots", type=int, default=2, help="slots per worker (default 2)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds allowed to drain (default 300)")
    parser.add_argument("--appendonly", action="store_true", help="run redis-server with appendonly yes")
    parser.add_argument("--seed", type=int, default=None, help="random seed, to replay a run's kill pattern")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run and report."""
    args = parse_args(argv)
    # SIGTERM (and SIGINT, which a shell ignores in background jobs) must unwind through the finally
    # blocks that kill the workers and the redis-server this run started.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    server = RedisServer(appendonly=args.appendonly).start()
    settings = ChaosSettings(tasks=args.tasks, workers=args.workers, slots=args.slots, seconds=args.seconds,
                             drain_timeout=args.drain_timeout, seed=args.seed)
    print(f"redis-server on port {server.port}; {args.workers} workers x {args.slots} slots, "
          f"keep_alive_timeout {settings.keep_alive_timeout}s, interval {settings.keep_alive_interval}s, "
          f"sweeper every {settings.sweeper_interval}s, kills every {settings.kill_gap_ms[0]:g}-"
          f"{settings.kill_gap_ms[1]:g} ms", flush=True)
    started = time.monotonic()
    try:
        run = ChaosRun(server.url, settings)
        report = run.run()
        print(report.summary())
        print(f"total          {time.monotonic() - started:.1f}s; logs in {run.log_dir}")
        if report.lost:
            print(f"LOST: {report.lost[:50]}\n{run.diagnose()}")
    finally:
        server.cleanup()
    return 1 if report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
