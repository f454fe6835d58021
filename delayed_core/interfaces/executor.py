"""The Executor interface: where a task's function runs."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..outcome import Outcome
from ..task import PyTask


@dataclass(frozen=True)
class ExecutorContext:
    """What a worker hands its executor at start.

    :param slots: how many tasks may run at once (one per worker slot).
    :param resolve: turns a function path into the allowed callable, or raises TaskNotAllowed. Child
        processes call it again on their side.
    :param child_started: call in a freshly forked or spawned child so plugins can re-create
        per-process resources (fires the ``delayed_executor_child_started`` hook).
    :param settings: executor-specific settings from the configuration (e.g. ``max_tasks_per_child``).
    :param child_setup: for executors that spawn a new interpreter: the import list and flags the child
        needs to build the same allowed set of functions.
    """

    slots: int
    resolve: Callable[[str], Callable[..., Any]]
    child_started: Callable[[str, int], None]
    settings: dict[str, Any]
    child_setup: dict[str, Any]


class Executor(abc.ABC):
    """Runs task functions and reports an :class:`~delayed_core.outcome.Outcome`; never raises for a
    task's own failure.

    ``execute`` is called concurrently from the worker's slot threads; ``slot`` (0 .. slots-1) tells
    them apart, so an executor can keep one child per slot.
    """

    #: name used in configuration (``executor = "thread"``)
    name: str = ""

    def start(self, context: ExecutorContext) -> None:  # noqa: B027 - optional for simple executors
        """Prepare to run tasks. Called once, before the worker starts any thread."""

    @abc.abstractmethod
    def execute(self, slot: int, task: PyTask, func: Callable[..., Any], timeout: float | None) -> Outcome:
        """Run ``func(*task.args, **task.kwargs)``, await its result when that is awaitable (an ``async def``
        task), and report how it went. A coroutine left unawaited is never a success.

        :param func: the allowed callable, already resolved by the worker. Executors that run the task
            in another process resolve ``task.func_path`` again there.
        :param timeout: seconds the task may run, or None for no limit.
        """

    def interrupt(self, slot: int) -> None:  # noqa: B027 - optional
        """Stop the task running in ``slot`` as soon as possible (shutdown past its timeout), from any thread,
        without blocking. ``execute`` may then still return an outcome, which the worker ignores."""

    def stop(self) -> None:  # noqa: B027 - optional
        """Release child processes and threads. Called once when the worker stops."""
