"""The task a log line belongs to, kept in a context variable while a slot handles one task.

The worker opens a :class:`TaskScope` around each task it handles and notes the task and its outcome as
they become known; a log formatter (``--log-format json``) reads :func:`current_fields` for every line.
A context variable rather than a thread-local: it follows the task into code run with ``contextvars``
copies (asyncio) and is reset, not leaked, when the scope closes, whatever way it closes.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from .task import PyTask, Task

if TYPE_CHECKING:  # annotations only
    from .outcome import Outcome

#: The scope of the task being handled. The worker sets and resets it itself around each task (a token in a
#: ``try``/``finally``: half the calls of a ``with`` block, on its hottest path); other code uses ``with``.
CURRENT_SCOPE: ContextVar[TaskScope | None] = ContextVar("delayed_task_scope", default=None)


class TaskScope:
    """What is known about the task a slot is handling. Use it as a ``with`` block.

    :param queue: the queue the task came from.
    :param worker_id: the slot's worker id.
    """

    __slots__ = ("_token", "outcome", "queue", "task", "worker_id")

    def __init__(self, queue: str, worker_id: str) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.task: Task | None = None
        self.outcome: Outcome | None = None
        self._token: Token[TaskScope | None] | None = None

    def __enter__(self) -> TaskScope:
        self._token = CURRENT_SCOPE.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            CURRENT_SCOPE.reset(self._token)
            self._token = None

    def fields(self) -> dict[str, Any]:
        """The log fields: queue, worker_id, then function, attempt, duration and outcome once known.

        ``attempt`` counts runs from 1, as the worker's log lines do. Tasks have no ids yet, so there is
        no task id field.
        """
        fields: dict[str, Any] = {"queue": self.queue, "worker_id": self.worker_id}
        task = self.task
        if task is not None:
            fields["function"] = task.func_path
            if isinstance(task, PyTask):
                fields["attempt"] = task.attempt + 1
        outcome = self.outcome
        if outcome is not None:
            fields["duration"] = round(outcome.duration, 6)
            fields["outcome"] = outcome.status.value
        return fields


def note_task(task: Task) -> None:
    """Record the decoded task in the current scope (no-op outside one)."""
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        scope.task = task


def note_outcome(outcome: Outcome) -> None:
    """Record the run's outcome in the current scope (no-op outside one)."""
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        scope.outcome = outcome


def current_fields() -> dict[str, Any]:
    """The task fields for a log line written now; empty outside a task."""
    scope = CURRENT_SCOPE.get()
    return scope.fields() if scope is not None else {}
