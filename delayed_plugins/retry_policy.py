"""The built-in retry decision: honour delayed 1.2's ``retry`` count, at once, no backoff.

It is ``trylast``, so the ``retry`` plugin (backoff, predicates) or any user plugin decides first.
"""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask


@hookimpl(trylast=True)
def delayed_retry_delay(queue: str, task: PyTask, outcome: Outcome) -> float | None:
    """Retry at once while ``task.retry`` is not 0 (negative: forever) and the failure is retryable."""
    if task.retry != 0 and outcome.retryable:
        return 0.0
    return None
