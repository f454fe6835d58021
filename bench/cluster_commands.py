"""Commands per task on each shard of a local three-master Redis Cluster (issue 15's figures).

Usage: ``.venv/bin/python bench/cluster_commands.py [--tasks 3000] [--queues 10] [--slots 4]``.

Two scenarios, each on a fresh cluster with ``INFO commandstats`` reset on every node:

- busy: the tasks are enqueued first (one batch per queue, queues spread over every shard), then one
  ``delayed worker`` serving every queue drains them;
- idle: the worker starts first on the empty queues, then the tasks come one by one (each one wakes a
  waiting slot), so every task costs the idle path (BLPOP + dequeue script).

Printed per node: the tasks its queues held, the commands clients sent per task (EVALSHA, BLPOP, LLEN,
MULTI/EXEC), and every command per task
including those scripts ran inside Redis. The machine is shared: these
are counts, not speeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from delayed_core import Delayed, PyTask
from delayed_redis.keys import CLUSTER, QueueKeys
from tests.chaos.processes import CliProcess
from tests.support.redis_cluster import LocalCluster, queues_on_every_node, slot_of

#: commands a client sends itself (the rest in commandstats ran inside scripts)
CLIENT_SENT = {"evalsha", "eval", "blpop", "llen", "multi", "exec", "client|unblock", "client|id"}
#: commands a client sends itself that are not per task (start-up, keep-alive, sweeps)
BACKGROUND = {"cluster|slots", "cluster|nodes", "command", "script|load", "subscribe", "ping"}


def run(cluster: LocalCluster, queues: list[str], tasks: int, slots: int, idle: bool, log_dir: Path) -> None:
    """One scenario; prints its table."""
    app = Delayed(cluster.url, load_entry_points=False)
    per_queue = tasks // len(queues)
    held = {node.address: 0 for node in cluster.nodes}
    for name in queues:
        held[cluster.owner(slot_of(name)).address] += per_queue
    args = ["worker", "--broker", cluster.url, *(a for name in queues for a in ("--queue", name)), "--slots",
            str(slots), "--import", "tests.scale_tasks", "--log-level", "WARNING"]
    worker = None
    if not idle:
        for name in queues:
            app.queue(name).enqueue_many([PyTask("tests.scale_tasks:noop") for _ in range(per_queue)])
    cluster.reset_stats()
    worker = CliProcess(args, log_dir)
    if idle:
        time.sleep(3.0)  # online and waiting (a worker starts in about 2 s on a busy machine)
        for number in range(per_queue * len(queues)):
            app.queue(queues[number % len(queues)]).enqueue(PyTask("tests.scale_tasks:noop"))
            time.sleep(0.005)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        # LINDEX, not LLEN: the worker's own LLENs are counted in the table
        client = app.broker(queues[0]).client
        left = sum(client.lindex(QueueKeys.for_queue(name, CLUSTER).queue, 0) is not None
                   or int(client.hlen(QueueKeys.for_queue(name, CLUSTER).processing)) > 0 for name in queues)
        if left == 0:
            break
        time.sleep(0.1)
    counts = cluster.command_counts()
    worker.terminate()
    worker.wait(30)
    app.close()
    print(f"\n{'idle' if idle else 'busy'}: {per_queue * len(queues)} tasks on {len(queues)} queues, "
          f"1 worker x {slots} slots")
    print(f"{'node':<22}{'tasks':>7}  {'client-sent per task':<56}{'all/task':>9}")
    for address, calls in counts.items():
        calls.pop("info", None)
        calls.pop("config|resetstat", None)
        count = max(1, held[address])
        # RPUSH is both sent (a notification given back) and run inside scripts: counted in all/task only
        sent = {name: value for name, value in calls.items() if name in CLIENT_SENT and name not in BACKGROUND}
        text = " ".join(f"{name} {value / count:.2f}" for name, value in sorted(sent.items(), key=lambda i: -i[1]))
        print(f"{address:<22}{held[address]:>7}  {text:<56}{sum(calls.values()) / count:>9.2f}")


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args(argv)
    for idle in (False, True):
        cluster = LocalCluster().start()
        try:
            queues = queues_on_every_node(cluster, args.queues, prefix="bench")
            log_dir = Path(cluster.nodes[0].dir)
            run(cluster, queues, args.tasks if not idle else min(args.tasks, 600), args.slots, idle, log_dir)
        finally:
            cluster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
