"""``delayed demo``: a guided run on the in-process broker, no Redis needed.

It enqueues sample tasks, runs a 4-slot worker, simulates a worker killed mid-task, lets the sweeper
recover that task, and prints what happened, using the same lifecycle hooks a metrics plugin would.
"""

from __future__ import annotations

import argparse
import collections
import logging
import threading
import time
from typing import Any

from ..app import Delayed
from ..deadletter import DeadLetter
from ..markers import hookimpl
from ..outcome import Outcome
from ..task import GoTask, PyTask
from . import demo_tasks

QUEUE = "demo"


class Progress:
    """A tiny plugin: counts lifecycle events and prints one line per finished task."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def _line(self, event: str, text: str) -> None:
        with self.lock:
            self.counts[event] += 1
            print(f"  {event:<13} {text}", flush=True)

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        self._line("succeeded", f"{task.func_path}{tuple(task.args)} in {outcome.duration * 1000:.0f} ms "
                                f"(slot {worker_id[:8]})")

    @hookimpl
    def delayed_task_requeued(self, queue: str, task: PyTask, worker_id: str, delay: float) -> None:
        self._line("retried", f"{task.func_path}{tuple(task.args)}, attempt {task.attempt + 1}")

    @hookimpl
    def delayed_task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        self._line("dead-lettered", f"{letter.func or '?'}: {letter.reason}: {letter.error}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser("demo", help="a guided run on an in-process broker (no Redis needed)",
                                   description="Enqueue sample tasks, run a worker and a sweeper on an "
                                               "in-process broker, and show what happens.")
    parser.set_defaults(run=run)


def run(_args: argparse.Namespace) -> int:
    """Run the demo and print a summary."""
    # The progress plugin prints every event; the worker's own log lines would say it all twice.
    logging.getLogger("delayed").setLevel(logging.CRITICAL)
    progress = Progress()
    app = Delayed("memory://demo", plugins=[progress], imports=[demo_tasks.__name__], slots=4,
                  load_entry_points=False, keep_alive_timeout=1, keep_alive_interval=0.5,
                  dequeue_timeout=0.2, retry_backoff=0.0)  # retries back off by default; a burst demo won't wait
    queue = app.queue(QUEUE)
    module = demo_tasks.__name__
    tasks: list[Any] = [PyTask(f"{module}:resize_image", [i]) for i in range(12)]
    tasks += [PyTask(f"{module}:send_email", [f"user{i}@example.com"], {"subject": "hi"}, retry=2)
              for i in range(3)]
    tasks += [PyTask(f"{module}:divide", [1, 0]), PyTask("os:system", ["rm -rf /"]), GoTask("main.Resize", [7])]
    print(f"1. enqueue {len(tasks)} tasks on queue {QUEUE!r} with one call (enqueue_many)")
    queue.enqueue_many(tasks)
    print("   among them: 3 e-mails that fail once then succeed on retry, a division by zero, a task")
    print("   naming os:system (not allowed) and a Go task (wrong language): nothing is dropped silently.")

    broker = app.broker(QUEUE)
    print("2. simulate a worker killed mid-task: a task held by a worker id whose liveness expired")
    queue.enqueue(PyTask(f"{module}:resize_image", [99]))
    broker.claim_worker_id("d" * 32, 0.2)
    lost = broker.dequeue("d" * 32, 1.0)
    assert lost is not None
    time.sleep(0.3)

    print("3. run a 4-slot worker (burst mode: it exits when the queue is empty) and a sweeper")
    started = time.perf_counter()
    report = app.sweeper([QUEUE]).sweep_once()[0]
    print(f"   sweeper: requeued {report.requeued} lost task(s)")
    app.worker(QUEUE).run(burst=True, install_signals=False)
    elapsed = time.perf_counter() - started

    counts = progress.counts
    info = broker.info()
    print("4. summary")
    print(f"   {counts['succeeded']} succeeded, {counts['retried']} retried, {counts['dead-lettered']} "
          f"dead-lettered, in {elapsed:.2f}s")
    print(f"   left in the queue: {info.length}, held by workers: {len(info.processing)}, "
          f"dead letters kept: {info.dead}")
    print("   with Redis: `delayed worker --broker redis://localhost:6379/0 --import yourmodule`")
    ok = counts["succeeded"] == 16 and counts["dead-lettered"] == 3 and info.length == 0
    return 0 if ok else 1
