"""What the pages show: plain records built from broker answers, and how a task is described.

Nothing here escapes HTML: the templates do (Jinja2 autoescape), so every string below may hold
anything a producer put in a task, ``<script>`` included.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from delayed_core.errors import TaskDecodeError
from delayed_core.interfaces import Serializer, Throughput

#: longest task description shown in a table cell (the dead-letter page shows the whole task)
SHORT = 160


def describe_task(serializer: Serializer, raw: bytes, limit: int | None = SHORT) -> tuple[str, str]:
    """``(function path, task repr)`` of task bytes; undecodable bytes are described, never raised."""
    try:
        task = serializer.loads(raw)
    except TaskDecodeError as exc:
        return "?", f"<undecodable: {exc}>"
    text = repr(task)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return task.func_path, text


def digest(raw: bytes) -> str:
    """A short, stable name for one dead-letter entry (entries have no id; their bytes are unique)."""
    return hashlib.sha1(raw).hexdigest()[:16]


@dataclass
class QueueView:
    """One row of the overview."""

    name: str
    waiting: int
    scheduled: int
    processing: int
    dead: int
    workers: int
    throughput: Throughput | None = None

    @property
    def done_total(self) -> int:
        """Tasks done over the chart's window."""
        return sum(self.throughput.done) if self.throughput else 0

    @property
    def failed_total(self) -> int:
        """Tasks dead-lettered over the chart's window."""
        return sum(self.throughput.failed) if self.throughput else 0


@dataclass
class WorkerView:
    """One worker id (a slot) as the workers page shows it.

    :param details: what the worker announced at start (host, pid, started, queues ...); empty for
        workers that do not announce (go-delayed, delayed 1.x, or a broker without the monitoring role).
    :param task_since: when this dashboard first saw the slot hold its current task (a lower bound of
        how long it has run, to within one refresh).
    """

    worker_id: str
    queue: str
    alive: bool
    details: dict[str, Any] = field(default_factory=dict)
    func: str = ""
    task: str = ""
    task_since: float | None = None


@dataclass
class ScheduledView:
    """One scheduled task."""

    queue: str
    due: float
    func: str
    task: str


@dataclass
class DeadView:
    """One dead letter, numbered as ``delayed dead list`` numbers it (0 is the newest)."""

    queue: str
    index: int
    digest: str
    time: float
    reason: str
    func: str
    error: str
    attempts: int
    worker: str
    task: str
    traceback: str = ""
