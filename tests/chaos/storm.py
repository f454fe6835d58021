"""The storm: the chaos run plus Redis itself misbehaving (issue 10's figures).

On top of :class:`~tests.chaos.harness.ChaosRun`:

- workers of mixed executors (thread, fork, subprocess, in turn), each stopped by SIGKILL or, for a share
  of the stops, by SIGTERM (graceful: running tasks get ``shutdown_timeout``, then are handed back);
- several sweepers, each killed now and then;
- a SIGSTOP of redis-server for ``redis_stop`` seconds from 25% of the kill window: every client hangs,
  and every worker id expires meanwhile;
- a read-only spell of ``read_only`` seconds from 65% of the window: ``REPLICAOF`` a port nothing listens
  on makes the server a replica, which answers every write with READONLY while it keeps its data (it
  never reaches a master to sync from); ``REPLICAOF NO ONE`` makes it a master again;
- a worker or sweeper that exits by itself is counted and restarted, as a process supervisor would.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer, free_port

from .harness import QUEUE, ChaosReport, ChaosRun, ChaosSettings
from .processes import CliProcess, worker_args

#: where in the kill window the Redis outages start (fractions of ``seconds``)
STOP_AT, READ_ONLY_AT = 0.25, 0.65


@dataclass
class StormSettings(ChaosSettings):
    """The chaos settings plus the storm's."""

    executors: tuple[str, ...] = ("thread", "fork", "subprocess")
    sweepers: int = 2
    sigterm_share: float = 0.3
    shutdown_timeout: float = 2.0
    redis_stop: float = 15.0
    read_only: float = 10.0

    def check(self) -> None:
        """Both outages must fit in the kill window, one after the other."""
        if self.seconds * STOP_AT + self.redis_stop > self.seconds * READ_ONLY_AT:
            raise ValueError(f"a {self.redis_stop:g}s SIGSTOP does not fit before the read-only spell at "
                             f"{self.seconds * READ_ONLY_AT:g}s: lengthen --seconds")
        if self.seconds * READ_ONLY_AT + self.read_only > self.seconds:
            raise ValueError(f"a {self.read_only:g}s read-only spell does not fit in {self.seconds:g}s")


@dataclass
class StormReport(ChaosReport):
    """The chaos figures plus the storm's."""

    sigterms: int = 0
    worker_exits: int = 0
    sweeper_exits: int = 0
    redis_stopped: float = 0.0
    read_only_seconds: float = 0.0
    read_only_confirmed: bool = False
    #: seconds into the kill window: the last batch enqueued, Redis writable again, every task ran
    enqueued_at: float | None = None
    writable_at: float | None = None
    drained_at: float | None = None

    def summary(self) -> str:
        """The chaos lines plus the storm's."""
        return "\n".join([
            super().summary(),
            f"sigterms       {self.sigterms} workers stopped gracefully",
            f"own exits      {self.worker_exits} workers, {self.sweeper_exits} sweepers exited by themselves "
            "(restarted)",
            f"redis          SIGSTOPped {self.redis_stopped:.1f}s; read-only {self.read_only_seconds:.1f}s "
            f"(writes refused: {self.read_only_confirmed})",
            f"enqueue        {self.enqueue_retries} batches refused and retried",
            f"timeline       last enqueue at {_seconds(self.enqueued_at)}, Redis writable again at "
            f"{_seconds(self.writable_at)}, every task ran by {_seconds(self.drained_at)} (into the window)",
        ])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


class StormRun(ChaosRun):
    """One storm against ``server`` (a private redis-server this run may stop and demote)."""

    def __init__(self, server: RedisServer, settings: StormSettings, log_dir: Path | None = None) -> None:
        settings.check()
        super().__init__(server.url, settings, log_dir)
        self.server = server
        self.storm: StormSettings = settings
        # Short timeouts: the kill loop must go on while Redis is stopped.
        self.client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.report: StormReport = StormReport(settings.tasks)
        self.sweepers: list[CliProcess] = []
        self.stopping: list[CliProcess] = []
        self._started_workers = 0
        self._stopped_since: float | None = None
        self._read_only_since: float | None = None
        self._outages_done = {"stop": False, "read_only": False}
        self._window_started = time.monotonic()
        self._next_drain_check = 0.0

    # -- processes -------------------------------------------------------------------------------
    def _start_worker(self) -> CliProcess:
        s = self.storm
        executor = s.executors[self._started_workers % len(s.executors)]
        self._started_workers += 1
        args = worker_args(self.url, QUEUE, slots=s.slots, keep_alive_timeout=s.keep_alive_timeout,
                           keep_alive_interval=s.keep_alive_interval,
                           extra=["--executor", executor, "--shutdown-timeout", str(s.shutdown_timeout)])
        return CliProcess(args, self.log_dir, self.env)

    def _held_by(self, victim: CliProcess) -> bool:
        try:
            return super()._held_by(victim)
        except redis.RedisError:
            return False  # Redis stopped or read-only: unknown, counted as not holding

    def _kill_one(self) -> None:
        if self.random.random() >= self.storm.sigterm_share:
            super()._kill_one()
            return
        index = self.random.randrange(len(self.workers))
        victim = self.workers[index]
        victim.terminate()
        self.report.sigterms += 1
        self.stopping.append(victim)
        self.workers[index] = self._start_worker()

    def _restart_exited(self) -> None:
        """Count and replace workers and sweepers that exited by themselves; reap SIGTERMed workers."""
        self.stopping = [process for process in self.stopping if process.alive()]
        for index, worker in enumerate(self.workers):
            if not worker.alive():
                self.report.worker_exits += 1
                self.workers[index] = self._start_worker()
        for index, sweeper in enumerate(self.sweepers):
            if not sweeper.alive():
                self.report.sweeper_exits += 1
                self.sweepers[index] = self._start_sweeper()

    def _processes(self) -> list[CliProcess]:
        first = [self.sweeper] if self.sweeper is not None else []  # in case no step ran
        return [*self.workers, *self.sweepers, *self.stopping, *first]

    # -- the window ------------------------------------------------------------------------------
    def _chaos_step(self, elapsed: float) -> None:
        s = self.storm
        if not self.sweepers:
            self._window_started = time.monotonic() - elapsed
            self.sweepers = [self.sweeper, *(self._start_sweeper() for _ in range(s.sweepers - 1))]
        self._restart_exited()
        self._kill_one()
        if self.random.random() < s.sweeper_kill_chance:
            index = self.random.randrange(len(self.sweepers))
            self.sweepers[index].kill()
            self.report.sweeper_kills += 1
            self.sweepers[index] = self._start_sweeper()
        self._drive_redis(elapsed)
        if self.report.drained_at is None:
            self._note_drain(elapsed)

    def _note_drain(self, elapsed: float) -> None:
        """Once the last batch went in, check twice a second whether every task ran (records the time)."""
        if self.report.enqueued_at is not None and time.monotonic() >= self._next_drain_check:
            self._next_drain_check = time.monotonic() + 0.5
            self._drained()

    def _produce(self, stop: threading.Event) -> None:
        super()._produce(stop)
        self.report.enqueued_at = time.monotonic() - self._window_started

    def _drive_redis(self, elapsed: float) -> None:
        s, now = self.storm, time.monotonic()
        if not self._outages_done["stop"] and self._stopped_since is None and elapsed >= s.seconds * STOP_AT:
            self._signal_redis(signal.SIGSTOP)
            self._stopped_since = now
        elif self._stopped_since is not None and now - self._stopped_since >= s.redis_stop:
            self._resume()
        if (not self._outages_done["read_only"] and self._read_only_since is None
                and elapsed >= s.seconds * READ_ONLY_AT):
            self._demote()
        elif self._read_only_since is not None and now - self._read_only_since >= s.read_only:
            self._promote()

    def _signal_redis(self, signum: int) -> None:
        assert self.server.process is not None
        self.server.process.send_signal(signum)

    def _resume(self) -> None:
        if self._stopped_since is not None:
            self._signal_redis(signal.SIGCONT)
            self.report.redis_stopped = time.monotonic() - self._stopped_since
            self._stopped_since = None
            self._outages_done["stop"] = True

    def _demote(self) -> None:
        """Make the server a replica of a port nothing listens on: writes answer READONLY, data stays."""
        admin = self.server.client(socket_timeout=5)
        admin.execute_command("REPLICAOF", "127.0.0.1", free_port())
        self._read_only_since = time.monotonic()
        try:
            admin.set("storm:probe", b"1")
        except redis.ReadOnlyError:
            self.report.read_only_confirmed = True

    def _promote(self) -> None:
        if self._read_only_since is not None:
            self.server.client(socket_timeout=5).execute_command("REPLICAOF", "NO", "ONE")
            self.report.read_only_seconds = time.monotonic() - self._read_only_since
            self.report.writable_at = time.monotonic() - self._window_started
            self._read_only_since = None
            self._outages_done["read_only"] = True

    def _end_chaos(self) -> None:
        """Whatever happens, leave Redis running and a master."""
        self._resume()
        self._promote()

    def _drained(self) -> bool:
        self._restart_exited()  # the drain needs living workers and sweepers too
        try:
            drained = super()._drained()
        except redis.RedisError:
            return False
        if drained and self.report.drained_at is None:
            self.report.drained_at = time.monotonic() - self._window_started
        return drained
