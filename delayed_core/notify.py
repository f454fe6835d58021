"""Firing lifecycle notifications cheaply, safely and by a typed name.

:class:`Notifier` has one method per notification hook, named as the hook and taking the hook's exact
keyword parameters: ``notifier.delayed_task_started(queue=q, task=t, worker_id=w)``. A misspelled hook or
argument is an ``AttributeError``/``TypeError`` (and a type checker error), never a notification that
silently goes nowhere. ``tests/test_notify.py`` checks every method against its spec in
:mod:`delayed_core.hookspecs`, and that every spec has a method or is listed in :data:`CALLED_DIRECTLY`.

A hook with no implementation costs one set lookup, not a pluggy call: the worker's hot path fires
several notifications per task (dequeued, started, then succeeded or failed, released ...). A
notification that raises is logged and swallowed *with a log line*, so a broken metrics plugin can never
stop a worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pluggy

from .hookspecs import all_hook_names

if TYPE_CHECKING:
    from .deadletter import DeadLetter
    from .interfaces import SweepReport
    from .outcome import Outcome
    from .task import PyTask, Task
    from .worker import Worker

logger = logging.getLogger("delayed.hooks")

#: Hooks the core calls through ``plugin_manager.hook`` itself, and why they are not on :class:`Notifier`.
CALLED_DIRECTLY = {
    "delayed_register_components": "an exception propagates: a plugin that cannot register stops the app",
    "delayed_app_created": "an exception propagates: a plugin that cannot set itself up stops the app",
    "delayed_doctor_checks": "an exception propagates: doctor reports it in one line",
    "delayed_executor_child_started": "fired in a child process, by the executor, through the child's plugins",
    "delayed_retry_delay": "a firstresult decision: its exception dead-letters the task",
}


class Notifier:
    """Fires notification hooks through typed methods, skipping those no plugin implements."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._active: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Re-read which hooks have implementations (after registering a plugin)."""
        self._active = frozenset(
            name for name in all_hook_names() if getattr(self._pm.hook, name).get_hookimpls()
        )

    def has(self, hook_name: str) -> bool:
        """True when some plugin implements ``hook_name``; a name that is no hook is a ValueError."""
        if hook_name not in self._active and hook_name not in all_hook_names():
            raise ValueError(f"no hook is called {hook_name!r}")
        return hook_name in self._active

    def _fire(self, hook_name: str, kwargs: dict[str, Any]) -> list[Any]:
        """Call an implemented hook; log, never raise, if an implementation fails (then answer [])."""
        try:
            return getattr(self._pm.hook, hook_name)(**kwargs)  # type: ignore[no-any-return]
        except Exception:
            logger.exception("plugin hook %s failed; the process carries on", hook_name)
            return []

    # -- producer ----------------------------------------------------------------------------------
    def delayed_task_enqueuing(self, *, queue: str, task: PyTask) -> list[dict[str, Any]]:
        """Ask plugins for ``meta`` fields (:func:`~delayed_core.hookspecs.delayed_task_enqueuing`): the
        non-None answers, in call order."""
        if "delayed_task_enqueuing" not in self._active:
            return []
        answers = self._fire("delayed_task_enqueuing", {"queue": queue, "task": task})
        return [answer for answer in answers if answer is not None]

    def delayed_task_enqueued(self, *, queue: str, task: Task) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_enqueued`."""
        if "delayed_task_enqueued" in self._active:
            self._fire("delayed_task_enqueued", {"queue": queue, "task": task})

    def delayed_task_enqueue_failed(self, *, queue: str, task: Task, error: Exception) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_enqueue_failed`."""
        if "delayed_task_enqueue_failed" in self._active:
            self._fire("delayed_task_enqueue_failed", {"queue": queue, "task": task, "error": error})

    # -- worker slots ------------------------------------------------------------------------------
    def delayed_task_dequeued(self, *, queue: str, task: Task, worker_id: str) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_dequeued`."""
        if "delayed_task_dequeued" in self._active:
            self._fire("delayed_task_dequeued", {"queue": queue, "task": task, "worker_id": worker_id})

    def delayed_task_started(self, *, queue: str, task: PyTask, worker_id: str) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_started`."""
        if "delayed_task_started" in self._active:
            self._fire("delayed_task_started", {"queue": queue, "task": task, "worker_id": worker_id})

    def delayed_task_succeeded(self, *, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_succeeded`."""
        if "delayed_task_succeeded" in self._active:
            self._fire("delayed_task_succeeded", {"queue": queue, "task": task, "worker_id": worker_id,
                                                  "outcome": outcome})

    def delayed_task_failed(self, *, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_failed`."""
        if "delayed_task_failed" in self._active:
            self._fire("delayed_task_failed", {"queue": queue, "task": task, "worker_id": worker_id,
                                               "outcome": outcome})

    def delayed_task_released(self, *, queue: str, task: Task, worker_id: str) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_released`."""
        if "delayed_task_released" in self._active:
            self._fire("delayed_task_released", {"queue": queue, "task": task, "worker_id": worker_id})

    def delayed_task_requeued(self, *, queue: str, task: Task, worker_id: str, delay: float) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_requeued`."""
        if "delayed_task_requeued" in self._active:
            self._fire("delayed_task_requeued", {"queue": queue, "task": task, "worker_id": worker_id,
                                                 "delay": delay})

    def delayed_task_dead_lettered(self, *, queue: str, letter: DeadLetter) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_task_dead_lettered`."""
        if "delayed_task_dead_lettered" in self._active:
            self._fire("delayed_task_dead_lettered", {"queue": queue, "letter": letter})

    # -- processes ---------------------------------------------------------------------------------
    def delayed_worker_started(self, *, worker: Worker) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_worker_started`."""
        if "delayed_worker_started" in self._active:
            self._fire("delayed_worker_started", {"worker": worker})

    def delayed_worker_stopped(self, *, worker: Worker) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_worker_stopped`."""
        if "delayed_worker_stopped" in self._active:
            self._fire("delayed_worker_stopped", {"worker": worker})

    def delayed_sweep_finished(self, *, queue: str, report: SweepReport) -> None:
        """Fire :func:`~delayed_core.hookspecs.delayed_sweep_finished`."""
        if "delayed_sweep_finished" in self._active:
            self._fire("delayed_sweep_finished", {"queue": queue, "report": report})
