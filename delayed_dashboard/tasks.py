"""Tracked tasks for the dashboard: one task's record by id, shown as text, and the cancel action.

Results and errors are free text from task code (``<script>`` included): the template escapes them,
and a URL with a password in them is hidden here, as everywhere else on the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

from delayed_core.app import Delayed
from delayed_core.handles import check_task_id
from delayed_core.interfaces.tracking import TaskRecord
from delayed_core.redact import redact

#: longest result shown (its repr); the rest is cut
RESULT_SHOWN = 4000


@dataclass
class TaskView:
    """One tracked task as the task page shows it: its record, and the texts made from it."""

    record: TaskRecord
    result: str = ""
    error: str = ""
    traceback: str = ""

    @property
    def cancellable(self) -> bool:
        """True while the task may still run (queued, scheduled, running, failed and to be retried)."""
        return self.record.status in ("queued", "scheduled", "running", "failed")


def valid_id(task_id: str) -> str | None:
    """Why ``task_id`` cannot be a task id, or None when it can."""
    try:
        check_task_id(task_id)
    except ValueError as exc:
        return str(exc)
    return None


def look_up(app: Delayed, task_id: str) -> TaskView:
    """The task's record (one round trip); status ``unknown`` for an id never tracked or expired."""
    record = app.handle(task_id).record()
    view = TaskView(record)
    if record.result is not None:
        view.result = redact(_value_text(app, record.result))
    elif record.status == "succeeded":
        view.error = redact(f"no value stored: {record.result_error or 'it returned nothing storable'}")
    if record.error_type or record.message:
        view.error = redact(f"{record.error_type}: {record.message}" if record.message else record.error_type)
    view.traceback = redact(record.traceback)
    return view


def cancel(app: Delayed, task_id: str, wait: float) -> bool:
    """``handle.cancel``: True when the task will not run, or its worker confirmed the stop in ``wait`` s."""
    return app.handle(task_id).cancel(wait=wait)


def _value_text(app: Delayed, data: bytes) -> str:
    try:
        text = repr(app.serializer.loads_value(data))
    except Exception as exc:  # a value written by another serializer, or damaged
        return f"<undecodable result: {exc}>"
    return text if len(text) <= RESULT_SHOWN else text[: RESULT_SHOWN - 1] + "…"
