"""A plugin module for ``delayed worker --plugin tests.support.two_second_retry``: a failed task retries
once, 2 s later (the server-clock tests use it to have a worker schedule a task with its own clock)."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask

DELAY = 2.0


@hookimpl
def delayed_retry_delay(queue: str, task: PyTask, outcome: Outcome) -> float | None:
    """Retry the first failure after DELAY seconds; give up after that."""
    return DELAY if task.attempt == 0 else -1.0
