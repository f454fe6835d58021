"""The chaos run: workers SIGKILLed and restarted at random while a producer enqueues, then a drain.

The run checks the delivery promise, at-least-once: every enqueued task runs at least once however the
workers die. Duplicates are expected (a worker killed after running a task but before releasing it) and
reported; a lost task is a bug.

Timeline: a sweeper and ``workers`` worker processes start; a producer thread enqueues ``tasks`` tasks
spread over the kill window; every 5-300 ms one worker is SIGKILLed (chosen among those older than a
random age, so some die while starting, some while dequeueing, releasing or running) and replaced at once;
after ``seconds`` the kills stop and the run waits until the queue and ``N_processing`` are empty and
every id ran, or the drain deadline passes.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from delayed_core import Delayed, PyTask
from delayed_core.errors import BrokerUnavailable
from delayed_core.queue import Queue

from .processes import TASKS_MODULE, CliProcess, sweeper_args, worker_args
from .tasks import RAN_LIST, RAN_SET

QUEUE = "chaos"
_IDS = re.compile(r"ids ([0-9a-f, ]+)")


def worker_ids_in(log: str) -> list[str]:
    """The slot ids a worker announced in its start-up log line ([] before it came online)."""
    match = _IDS.search(log)
    return [worker_id.strip() for worker_id in match.group(1).split(",") if worker_id.strip()] if match else []


@dataclass
class ChaosSettings:
    """What to run and for how long."""

    tasks: int = 2000
    workers: int = 3
    slots: int = 2
    prefetch: int = 1  # tasks each slot takes per call (--prefetch)
    # kill only workers that came online, and start the clock once the first ones are (a short run on a
    # loaded machine, where starting a worker may take seconds)
    kill_online_only: bool = False
    seconds: float = 20.0
    kill_gap_ms: tuple[float, float] = (5.0, 300.0)
    task_sleep_ms: tuple[float, float] = (1.0, 15.0)
    keep_alive_timeout: float = 1.0
    keep_alive_interval: float = 0.25
    sweeper_interval: float = 0.5
    sweeper_kill_chance: float = 0.02
    drain_timeout: float = 60.0
    seed: int | None = None
    #: the kill window goes on past ``seconds`` until this many kills landed, for at most ``overtime`` s
    min_kills: int = 0
    overtime: float = 20.0


@dataclass
class ChaosReport:
    """What happened."""

    tasks: int
    enqueued: int = 0
    kills: int = 0
    kills_holding_task: int = 0
    sweeper_kills: int = 0
    runs: int = 0
    ran: int = 0
    lost: list[int] = field(default_factory=list)
    dead_letters: int = 0
    enqueue_retries: int = 0
    kill_seconds: float = 0.0
    drain_seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        """Runs beyond the first of each task."""
        return self.runs - self.ran

    def summary(self) -> str:
        """One line per figure."""
        return "\n".join([
            f"tasks          {self.tasks} (enqueued {self.enqueued})",
            f"kills          {self.kills} workers SIGKILLed ({self.kills_holding_task} while holding a task), "
            f"{self.sweeper_kills} sweeper kills, over {self.kill_seconds:.1f}s",
            f"runs           {self.runs} ({self.ran} distinct)",
            f"duplicates     {self.duplicates}",
            f"lost           {len(self.lost)}",
            f"dead letters   {self.dead_letters}",
            f"drain          {self.drain_seconds:.1f}s after the last kill",
        ])


class ChaosRun:
    """One chaos run against the Redis at ``url`` (which it flushes).

    :param url: a private redis-server's URL.
    :param settings: sizes and timings.
    :param log_dir: where process logs go (a fresh temporary directory by default).
    """

    def __init__(self, url: str, settings: ChaosSettings, log_dir: Path | None = None) -> None:
        self.url = url
        self.settings = settings
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="delayed-chaos-"))
        self.client = redis.Redis.from_url(url)
        self.random = random.Random(settings.seed)
        self.report = ChaosReport(settings.tasks)
        self.workers: list[CliProcess] = []
        self.sweeper: CliProcess | None = None
        self.env = {"CHAOS_REDIS_URL": url}
        self.enqueue_errors: set[str] = set()

    # -- processes -------------------------------------------------------------------------------
    def _start_worker(self) -> CliProcess:
        s = self.settings
        args = worker_args(self.url, QUEUE, slots=s.slots, keep_alive_timeout=s.keep_alive_timeout,
                           keep_alive_interval=s.keep_alive_interval, extra=["--prefetch", str(s.prefetch)])
        return CliProcess(args, self.log_dir, self.env)

    def _start_sweeper(self) -> CliProcess:
        # max_recoveries 0: this run measures delivery, so a task held by many killed workers must be
        # requeued, not dead-lettered as poison (that cap is tested on its own).
        return CliProcess(sweeper_args(self.url, QUEUE, self.settings.sweeper_interval, 0), self.log_dir, self.env)

    def _held_by(self, victim: CliProcess) -> bool:
        """Whether the killed worker held a task (its ids are in its start-up log line)."""
        ids = worker_ids_in(victim.log())
        return bool(ids) and any(self.client.hmget(f"{QUEUE}_processing", ids))

    def _kill_candidates(self) -> list[int]:
        """The indexes of the workers a kill may pick."""
        # Only workers older than a random age qualify: a mix of kills during start-up and id claims,
        # and kills of workers in full swing.
        min_age = self.random.uniform(0.0, 1.5)
        return [i for i, worker in enumerate(self.workers) if worker.age >= min_age
                and (not self.settings.kill_online_only or worker_ids_in(worker.log()))]

    def _kill_one(self) -> None:
        candidates = self._kill_candidates()
        if not candidates:
            return
        index = self.random.choice(candidates)
        victim = self.workers[index]
        victim.kill()
        self.report.kills += 1
        if self._held_by(victim):
            self.report.kills_holding_task += 1
        self.workers[index] = self._start_worker()

    # -- phases ----------------------------------------------------------------------------------
    def _producer_queues(self, app: Delayed) -> list[Queue]:
        """The queues the producer fills, a batch each in turn."""
        return [app.queue(QUEUE)]

    def _producer_url(self) -> str:
        return self.url

    def _produce(self, stop: threading.Event) -> None:
        """Enqueue every task, in small batches spread over the first 80% of the kill window."""
        s = self.settings
        app = Delayed(self._producer_url(), load_entry_points=False)
        queues = self._producer_queues(app)
        batch = max(1, s.tasks // max(1, int(s.seconds * 0.8 / 0.05)))
        try:
            for number, first in enumerate(range(0, s.tasks, batch)):
                tasks = [PyTask(f"{TASKS_MODULE}:record", [i, round(self.random.uniform(*s.task_sleep_ms), 1)])
                         for i in range(first, min(first + batch, s.tasks))]
                while not self._enqueue(queues[number % len(queues)], tasks) and not stop.is_set():
                    stop.wait(0.2)
                self.report.enqueued += len(tasks)
                if stop.wait(0.05):
                    break
        finally:
            app.close()

    def _enqueue(self, queue: Queue, tasks: list[PyTask]) -> bool:
        """Enqueue a batch; False when the broker refused it (a read-only or stopped Redis in the storm),
        so that the producer retries it. A MULTI/EXEC batch is all or nothing: a retry adds no duplicate."""
        try:
            queue.enqueue_many(tasks)
        except (BrokerUnavailable, redis.RedisError) as exc:
            self.report.enqueue_retries += 1
            # The type and the server's words only: redis-py quotes the refused command, task bytes included.
            self.enqueue_errors.add(f"{type(exc).__name__}: {str(exc).rsplit(': ', 1)[-1][:100]}")
            return False
        return True

    def _drained(self) -> bool:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(QUEUE).hlen(f"{QUEUE}_processing").scard(RAN_SET)
            length, processing, ran = pipe.execute()
        return length == 0 and processing == 0 and ran >= self.settings.tasks

    def run(self) -> ChaosReport:
        """Run the whole thing; always stops every process it started."""
        s = self.settings
        self.client.flushall()
        stop_producer = threading.Event()
        producer = threading.Thread(target=self._produce, args=(stop_producer,), daemon=True)
        try:
            self.sweeper = self._start_sweeper()
            self.workers = [self._start_worker() for _ in range(s.workers)]
            self._await_serving()
            producer.start()
            started = time.monotonic()
            while not self._window_over(time.monotonic() - started):
                time.sleep(self.random.uniform(*s.kill_gap_ms) / 1000)
                self._chaos_step(time.monotonic() - started)
            self._end_chaos()
            self.report.kill_seconds = time.monotonic() - started
            producer.join(s.drain_timeout)
            drain_started = time.monotonic()
            while not self._drained() and time.monotonic() - drain_started < s.drain_timeout:
                time.sleep(0.1)
            self.report.drain_seconds = time.monotonic() - drain_started
        finally:
            stop_producer.set()
            self._end_chaos()
            for process in self._processes():
                process.kill()
        self._collect()
        return self.report

    def _await_serving(self) -> None:
        """With ``kill_online_only``, return once the first workers came online (a loaded machine may take
        seconds to start them: the kill window counts from there); else at once (kills while they start)."""
        if self.settings.kill_online_only:
            for worker in self.workers:
                worker.wait_for_log(", ids ", 60)

    def _window_over(self, elapsed: float) -> bool:
        """Whether the kill window is over: ``seconds`` passed and ``min_kills`` kills landed (or the
        overtime is spent too: the test's own assertion then says what is missing)."""
        s = self.settings
        return elapsed >= s.seconds and (self.report.kills >= s.min_kills or elapsed >= s.seconds + s.overtime)

    def _chaos_step(self, elapsed: float) -> None:
        """One step of the kill window, ``elapsed`` seconds into it: kill a worker, maybe the sweeper."""
        self._kill_one()
        if self.random.random() < self.settings.sweeper_kill_chance:
            assert self.sweeper is not None
            self.sweeper.kill()
            self.report.sweeper_kills += 1
            self.sweeper = self._start_sweeper()

    def _end_chaos(self) -> None:
        """Undo whatever the kill window left broken (nothing here; the storm resumes Redis)."""

    def _processes(self) -> list[CliProcess]:
        """Every process this run started and may still have to kill."""
        return [*self.workers, *([self.sweeper] if self.sweeper else [])]

    def _collect(self) -> None:
        r = self.report
        r.runs = int(self.client.llen(RAN_LIST))
        ran = {int(member) for member in self.client.smembers(RAN_SET)}
        r.ran = len(ran)
        r.lost = sorted(set(range(self.settings.tasks)) - ran)
        r.dead_letters = int(self.client.llen(f"{QUEUE}_dead"))

    def diagnose(self) -> str:
        """Queue state and the tail of the newest logs, for a failure message."""
        state = {key: self.client.type(key).decode() for key in self.client.keys(f"{QUEUE}*")}
        logs = sorted(self.log_dir.glob("*.log"), key=lambda path: path.stat().st_mtime)[-3:]
        tails = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}" for path in logs)
        return f"keys: {state}\nprocessing: {self.client.hgetall(QUEUE + '_processing')}\n{tails}"
