"""The Executor interface: where a task's function runs."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..child_app import ChildSetup
    from ..config import Config
    from ..outcome import Outcome
    from ..task import PyTask


@dataclass(frozen=True)
class ExecutorContext:
    """What a worker hands its executor at start.

    :param slots: how many tasks may run at once (one per worker slot).
    :param config: the worker process's effective configuration. An executor reads the settings its
        plugin declared with the typed accessor (``context.config.get(MAX_TASKS_PER_CHILD)``).
    :param resolve: turns a function path into the allowed callable, or raises TaskNotAllowed. Call it
        where the task runs: in the worker for in-process executors, in the child process otherwise.
    :param child_started: call in a freshly forked child so plugins can re-create per-process resources
        (fires the worker's ``delayed_executor_child_started`` hook).
    :param child_setup: for executors that spawn a new interpreter: how that child rebuilds the worker's
        app (:meth:`~delayed_core.child_app.ChildSetup.build_app`) with the same plugins and functions.
    """

    slots: int
    config: Config
    resolve: Callable[[str], Callable[..., Any]]
    child_started: Callable[[str, int], None]
    child_setup: ChildSetup


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
    def execute(self, slot: int, task: PyTask, timeout: float | None) -> Outcome:
        """Resolve ``task.func_path`` where the task runs, call it with ``task.args`` and ``task.kwargs``,
        await its result when that is awaitable (an ``async def`` task), and report how it went. A
        coroutine left unawaited is never a success.

        The worker has already checked that the path is allowed (``FunctionRegistry.check_allowed``);
        a path that still does not resolve where the task runs (a function the child cannot import)
        is a failure without retry.

        :param timeout: seconds the task may run, or None for no limit.
        """

    def interrupt(self, slot: int) -> None:  # noqa: B027 - optional
        """Stop the task running in ``slot`` as soon as possible (shutdown past its timeout), from any thread,
        without blocking. ``execute`` may then still return an outcome, which the worker ignores."""

    def stop(self) -> None:  # noqa: B027 - optional
        """Release child processes and threads. Called once when the worker stops."""
