"""What the runner writes into a tracked task's record when it settles the task (see handles.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

from .deadletter import DeadLetter
from .disposition import DEAD_LETTER, RELEASE, Disposition
from .handles import ID_FIELD, RESULT_MAX_BYTES, RESULT_TTL
from .interfaces import Broker, Serializer
from .interfaces.tracking import CANCELLED, DEAD, FAILED, SUCCEEDED, Finish, TaskTracker
from .outcome import Outcome, Unencodable
from .task import PyTask

logger = logging.getLogger("delayed.worker")


def tracker_for(broker: Broker) -> TaskTracker | None:
    """The broker's tracker, or None when the broker keeps no task records. Built once per broker and
    kept on it (an enqueue asks for it every time)."""
    cls = broker.tracker_class
    if cls is None:
        return None
    tracker = broker.__dict__.get("_tracker")
    if tracker is None:
        tracker = broker.__dict__["_tracker"] = cls(broker)
    return tracker  # type: ignore[no-any-return]


def tracked_id(task: object) -> str | None:
    """The id of a tracked task, or None."""
    if isinstance(task, PyTask):
        task_id = task.meta.get(ID_FIELD)
        if task_id is not None and isinstance(task_id, str) and task_id:  # asked once per task: None first
            return task_id
    return None


def ttl_of(task: PyTask, default: int) -> int:
    """The task's own ``result_ttl`` (meta ``rt``), else the setting's."""
    ttl = task.meta.get("rt")
    return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else default


class RecordLimits:
    """A queue's ``result_max_bytes`` and ``result_ttl``, read from its config once per worker rather than
    once per task: :func:`finish_for` runs for every tracked task a slot settles."""

    __slots__ = ("max_bytes", "ttl")

    def __init__(self, config: Any) -> None:
        self.max_bytes: int = config.get(RESULT_MAX_BYTES)
        self.ttl: int = config.get(RESULT_TTL)


def finish_for(d: Disposition, outcome: Outcome | None, started: float, worker_id: str, serializer: Serializer,
               limits: RecordLimits, cancelled: bool = False, task_id: str | None = None) -> Finish | None:
    """The record fields for disposition ``d`` of a tracked task; None when the task is not tracked.

    :param task_id: the task's id when the caller has read it already (:func:`tracked_id`).
    """
    task = d.task
    if task_id is None:
        task_id = tracked_id(task)
    if task_id is None or not isinstance(task, PyTask):
        return None
    meta = task.meta
    # The queue and the function too: a tracker may write a settled record whole, keeping nothing of the
    # pending one but its enqueue time (Redis does: one SET). The finish time is the worker's clock, as the
    # start time is. The attempt comes from meta directly: it was checked when the task was decoded.
    fields: dict[str, Any] = {"a": meta.get("attempt", 0) + 1, "w": worker_id, "st": int(started * 1000),
                              "fi": int(time.time() * 1000), "q": d.queue, "fn": task.func_path}
    if cancelled:
        fields["s"] = CANCELLED
    elif d.kind == RELEASE and outcome is not None and outcome.ok:
        fields["s"] = SUCCEEDED
        fields.update(_value_fields(outcome.value, serializer, limits.max_bytes, task_id))
    elif d.kind == DEAD_LETTER and d.letter is not None:
        fields.update(_error_fields(DEAD, outcome, d.letter))
    elif d.kind == RELEASE:  # failed for good, dead letters off
        fields.update(_error_fields(DEAD, outcome, None))
    else:
        fields.update(_error_fields(FAILED, outcome, None))
    return Finish(task_id, fields, limits.ttl if "rt" not in meta else ttl_of(task, limits.ttl))


def _value_fields(value: Any, serializer: Serializer, cap: int, task_id: str) -> dict[str, Any]:
    if isinstance(value, Unencodable):
        reason = value.reason
    else:
        try:
            data = serializer.dumps_value(value)
        except Exception as exc:  # any object may come back from a task
            reason = f"the return value cannot be encoded: {exc}"
        else:
            if len(data) <= cap:
                return {"r": data}
            reason = f"the return value takes {len(data)} bytes, over result_max_bytes ({cap}); it was not stored"
    logger.error("task %s succeeded, but %s", task_id, reason)
    return {"re": reason}


def _error_fields(status: str, outcome: Outcome | None, letter: DeadLetter | None) -> dict[str, Any]:
    if outcome is not None and not outcome.ok:
        return {"s": status, "et": outcome.error_type, "em": outcome.error, "tb": outcome.traceback}
    if letter is not None:
        return {"s": status, "et": letter.reason, "em": letter.error, "tb": letter.traceback}
    return {"s": status, "et": "", "em": ""}


def now() -> float:
    """Wall-clock time, for the record's ``started`` field."""
    return time.time()


def mark_buried(app: Any, queue: str, letter: DeadLetter, config: Any) -> None:
    """After the sweeper buried a poison task: if it is tracked, its record says ``dead`` (one round trip,
    off the hot path). A failure is logged: the dead letter is stored, only the record lags."""
    tracker = tracker_for(app.broker(queue))
    if tracker is None:
        return
    try:
        task = app.serializer.loads(letter.task)
    except Exception:  # an undecodable poison task cannot be a tracked one
        return
    task_id = tracked_id(task)
    if task_id is None or not isinstance(task, PyTask):
        return
    fields: dict[str, str | bytes | int | float] = {"s": DEAD, "a": letter.attempts, "w": letter.worker,
                                                     "et": letter.reason, "em": letter.error, "q": queue,
                                                     "fn": task.func_path}
    try:
        tracker.mark(Finish(task_id, fields, ttl_of(task, config.get(RESULT_TTL))))
    except Exception as exc:
        logger.error("queue %s: could not mark poison task %s dead in its record (%s)", queue, task_id, exc)
