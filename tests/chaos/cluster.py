"""The chaos run on a Redis Cluster: ten queues spread over every shard, workers serving all of them (so
their idle slots wait on every shard at once) SIGKILLed at random, one sweeper for all queues. The tasks
record their runs on a separate plain redis-server, so the record is not part of the cluster under test.

Optionally a slot moves to another node in the middle of the kill window (``reshard``), with the keys of
a busy queue in it: workers meet ASK and MOVED answers while they run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from delayed_core import Delayed
from delayed_core.queue import Queue
from delayed_redis.cluster import cluster_client
from delayed_redis.keys import CLUSTER, QueueKeys

from .harness import ChaosRun, ChaosSettings, worker_ids_in
from .processes import CliProcess, sweeper_args, worker_args
from .tasks import RAN_SET


class ClusterChaosRun(ChaosRun):
    """A :class:`ChaosRun` over ``queues`` of the cluster at ``url``; runs are recorded at ``record_url``.

    :param during: called once, in its own thread, when the kill window is half over (a reshard).
    """

    def __init__(self, url: str, record_url: str, queues: list[str], settings: ChaosSettings,
                 during: Callable[[], object] | None = None, log_dir: Path | None = None) -> None:
        super().__init__(record_url, settings, log_dir)
        self.cluster_url = url
        self.queues = queues
        self.cluster = cluster_client(url, {})
        self.during = during
        self.during_thread: threading.Thread | None = None
        self.env = {"CHAOS_REDIS_URL": record_url}

    def _queue_args(self) -> list[str]:
        return [item for name in self.queues[1:] for item in ("--queue", name)]

    def _start_worker(self) -> CliProcess:
        s = self.settings
        args = worker_args(self.cluster_url, self.queues[0], slots=s.slots, keep_alive_timeout=s.keep_alive_timeout,
                           keep_alive_interval=s.keep_alive_interval, extra=self._queue_args())
        return CliProcess(args, self.log_dir, self.env)

    def _start_sweeper(self) -> CliProcess:
        args = sweeper_args(self.cluster_url, self.queues[0], self.settings.sweeper_interval, 0)
        return CliProcess([*args, *self._queue_args()], self.log_dir, self.env)

    def _serving(self, worker: CliProcess) -> bool:
        """Whether ``worker`` named its ids and holds their liveness keys (it claimed them: it serves)."""
        ids = worker_ids_in(worker.log())
        keys = QueueKeys.for_queue(self.queues[0], CLUSTER)
        try:
            return bool(ids) and int(self.cluster.exists(*(keys.liveness(worker_id) for worker_id in ids))) == len(ids)
        except redis.exceptions.RedisError:
            # The liveness keys share the slot the reshard moves: while its keys are split between two
            # nodes, a multi-key EXISTS gets TRYAGAIN until redis-py gives up. Unknown counts as not
            # serving: this step picks among the other workers.
            return False

    def _await_serving(self) -> None:
        """Until every first worker serves: on a busy two-core machine a worker takes seconds to start,
        and a kill window spent waiting for them would kill nothing."""
        deadline = time.monotonic() + 60
        while not all(self._serving(worker) for worker in self.workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not come online in 60 s\n{self.diagnose()}")
            time.sleep(0.05)

    def _kill_candidates(self) -> list[int]:
        """Only workers that serve (kills during start-up alone would leave the cluster paths untested;
        a replacement joins the candidates once it serves)."""
        return [i for i, worker in enumerate(self.workers) if self._serving(worker)]

    def _held_by(self, victim: CliProcess) -> bool:
        ids = worker_ids_in(victim.log())
        try:
            return bool(ids) and any(any(self.cluster.hmget(QueueKeys.for_queue(name, CLUSTER).processing, ids))
                                     for name in self.queues)
        except redis.exceptions.RedisError:
            return False  # as in _serving: a statistic of the report, unknown while the slot is split

    def _producer_url(self) -> str:
        return self.cluster_url

    def _producer_queues(self, app: Delayed) -> list[Queue]:
        """Every queue, round-robin."""
        return [app.queue(name) for name in self.queues]

    def _chaos_step(self, elapsed: float) -> None:
        super()._chaos_step(elapsed)
        if self.during is not None and self.during_thread is None and elapsed >= self.settings.seconds / 2:
            self.during_thread = threading.Thread(target=self.during, daemon=True)
            self.during_thread.start()

    def _end_chaos(self) -> None:
        if self.during_thread is not None:
            self.during_thread.join(60)

    def _drained(self) -> bool:
        waiting = 0
        for name in self.queues:
            k = QueueKeys.for_queue(name, CLUSTER)
            waiting += int(self.cluster.llen(k.queue)) + int(self.cluster.hlen(k.processing))
        return waiting == 0 and int(self.client.scard(RAN_SET)) >= self.settings.tasks

    def run(self):  # type: ignore[no-untyped-def]
        """Flush the cluster's nodes too, then the usual run."""
        for node in self.cluster.get_primaries():
            self.cluster.get_redis_connection(node).flushall()
        return super().run()

    def _collect(self) -> None:
        super()._collect()
        self.report.dead_letters = sum(int(self.cluster.llen(QueueKeys.for_queue(name, CLUSTER).dead))
                                       for name in self.queues)

    def diagnose(self) -> str:
        """Per queue lengths and holders, and the newest logs."""
        lines = []
        for name in self.queues:
            k = QueueKeys.for_queue(name, CLUSTER)
            lines.append(f"{name}: len {self.cluster.llen(k.queue)} noti {self.cluster.llen(k.notifications)} "
                         f"processing {self.cluster.hgetall(k.processing)}")
        logs = sorted(self.log_dir.glob("*.log"), key=lambda path: path.stat().st_mtime)[-3:]
        tails = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}" for path in logs)
        return "\n".join(lines) + "\n" + tails


def cluster_settings(tasks: int = 800, seconds: float = 8.0) -> ChaosSettings:
    """A short run for CI: a few seconds of kills on two-slot workers, and at least three kills of serving
    workers (the window goes on for them when workers start slowly)."""
    return ChaosSettings(tasks=tasks, workers=3, slots=2, seconds=seconds, drain_timeout=40,
                         kill_gap_ms=(100.0, 400.0), sweeper_kill_chance=0.0, min_kills=3)

