"""Long chaos run: ``python scripts/chaos.py --tasks 50000 --seconds 300 --workers 4``.

Starts its own redis-server on a free port (never a shared one), runs the chaos harness of
``tests/chaos`` (workers SIGKILLed every 5-300 ms and restarted, a sweeper, a producer), then prints tasks,
kills, duplicates and lost. Exits 1 if any task was lost.

``--storm`` runs issue 10's storm instead (``tests/chaos/storm.py``): by default 5,000 tasks over 60 s,
4 workers of mixed executors (thread, fork, subprocess) stopped by SIGKILL or SIGTERM, 2 sweepers killed
now and then, a 15 s SIGSTOP of redis-server and a 10 s read-only spell. Any of those can be overridden,
for example a smoke run: ``--storm --seconds 10 --tasks 500 --redis-stop 2 --read-only 2``.

``--cluster`` runs on a local three-master Redis Cluster instead (ten queues over the shards; the tasks
record their runs on a separate redis-server), and ``--reshard`` moves a busy queue's slot to a fourth
master halfway through: ``--cluster --reshard --seconds 60 --tasks 10000``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.cluster import ClusterChaosRun
from tests.chaos.harness import ChaosRun, ChaosSettings
from tests.chaos.storm import StormRun, StormSettings
from tests.support.redis_cluster import LocalCluster, queues_on_every_node, slot_of
from tests.support.redis_server import RedisServer

#: defaults of a plain chaos run, and of a storm (issue 10)
DEFAULTS = {"tasks": 50000, "seconds": 300.0, "workers": 4}
STORM_DEFAULTS = {"tasks": 5000, "seconds": 60.0, "workers": 4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, help="tasks to enqueue (default 50000; storm 5000)")
    parser.add_argument("--seconds", type=float, help="length of the kill window (default 300; storm 60)")
    parser.add_argument("--workers", type=int, help="worker processes (default 4)")
    parser.add_argument("--slots", type=int, default=2, help="slots per worker (default 2)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds allowed to drain (default 300)")
    parser.add_argument("--appendonly", action="store_true", help="run redis-server with appendonly yes")
    parser.add_argument("--seed", type=int, default=None, help="random seed, to replay a run's kill pattern")
    cluster = parser.add_argument_group("Redis Cluster")
    cluster.add_argument("--cluster", action="store_true", help="run on a local three-master Redis Cluster, "
                         "ten queues spread over the shards, workers serving them all (tests/chaos/cluster.py)")
    cluster.add_argument("--reshard", action="store_true", help="with --cluster: halfway through, add a fourth "
                         "master and move the first queue's slot to it while workers run")
    storm = parser.add_argument_group("storm")
    storm.add_argument("--storm", action="store_true", help="run the storm: mixed executors, SIGTERMs, "
                       "several sweepers, a stopped and a read-only Redis")
    storm.add_argument("--executors", default="thread,fork,subprocess",
                       help="executors the workers use in turn (default thread,fork,subprocess)")
    storm.add_argument("--sweepers", type=int, default=2, help="sweeper processes (default 2)")
    storm.add_argument("--sigterm-share", type=float, default=0.3,
                       help="share of worker stops that are SIGTERM instead of SIGKILL (default 0.3)")
    storm.add_argument("--redis-stop", type=float, default=15.0, help="seconds redis-server stays SIGSTOPped "
                       "(default 15)")
    storm.add_argument("--read-only", type=float, default=10.0, help="seconds redis-server refuses writes "
                       "(default 10)")
    args = parser.parse_args(argv)
    for name, value in (STORM_DEFAULTS if args.storm else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def build_run(args: argparse.Namespace, server: RedisServer, cluster: LocalCluster | None = None) -> ChaosRun:
    """A plain chaos run, a cluster run or a storm, from the command line."""
    common = {"tasks": args.tasks, "workers": args.workers, "slots": args.slots, "seconds": args.seconds,
              "drain_timeout": args.drain_timeout, "seed": args.seed}
    if cluster is not None:
        queues = queues_on_every_node(cluster, 10, prefix="chaos")

        def reshard() -> None:
            target = cluster.add_master()
            moved = cluster.move_slot(slot_of(queues[0]), target, batch=1, pause=0.05)
            print(f"moved the slot of {queues[0]} ({moved} keys) to a fourth master", flush=True)

        return ClusterChaosRun(cluster.url, server.url, queues, ChaosSettings(**common),
                               during=reshard if args.reshard else None)
    if not args.storm:
        return ChaosRun(server.url, ChaosSettings(**common))
    settings = StormSettings(**common, executors=tuple(args.executors.split(",")), sweepers=args.sweepers,
                             sigterm_share=args.sigterm_share, redis_stop=args.redis_stop,
                             read_only=args.read_only)
    return StormRun(server, settings)


def main(argv: list[str] | None = None) -> int:
    """Run and report."""
    args = parse_args(argv)
    # SIGTERM (and SIGINT, which a shell ignores in background jobs) must unwind through the finally
    # blocks that kill the workers and the redis-server this run started.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    server = RedisServer(appendonly=args.appendonly).start()
    cluster = LocalCluster().start() if args.cluster else None
    started = time.monotonic()
    try:
        try:
            run = build_run(args, server, cluster)
        except ValueError as exc:
            print(f"chaos.py: error: {exc}", file=sys.stderr)
            return 2
        s = run.settings
        print(f"redis-server on port {server.port}; {s.workers} workers x {s.slots} slots, "
              f"keep_alive_timeout {s.keep_alive_timeout}s, interval {s.keep_alive_interval}s, "
              f"sweeper every {s.sweeper_interval}s, kills every {s.kill_gap_ms[0]:g}-"
              f"{s.kill_gap_ms[1]:g} ms" + (f"; storm: {run.storm}" if isinstance(run, StormRun) else ""),
              flush=True)
        report = run.run()
        print(report.summary())
        print(f"total          {time.monotonic() - started:.1f}s; logs in {run.log_dir}")
        if run.enqueue_errors:
            print(f"enqueue errors {sorted(run.enqueue_errors)}")
        if report.lost:
            print(f"LOST: {report.lost[:50]}\n{run.diagnose()}")
    finally:
        server.cleanup()
        if cluster is not None:
            cluster.cleanup()
    return 1 if report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
