"""Firing lifecycle notifications cheaply, safely and by a typed name.

:class:`Notifier` has one attribute per notification hook, named as the hook and typed from the hook's
spec in :mod:`delayed_core.hookspecs`: ``notifier.delayed_task_started(queue=q, task=t, worker_id=w)``.
A misspelled hook is an ``AttributeError``, a misspelled or missing argument a ``TypeError`` (and both
are type checker errors), never a notification that silently goes nowhere. ``tests/test_notify.py``
checks that every spec has its attribute here or is listed in :data:`CALLED_DIRECTLY`.

A hook with no implementation costs one attribute lookup and a call to a function that does nothing, not
a pluggy call: the worker's hot path fires several notifications per task (dequeued, started, then
succeeded or failed, released ...). A notification that raises is logged and swallowed *with a log
line*, so a broken metrics plugin can never stop a worker.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

import pluggy

from . import hookspecs
from .hookspecs import all_hook_names

if TYPE_CHECKING:
    from .task import PyTask

P = ParamSpec("P")

logger = logging.getLogger("delayed.hooks")

#: Hooks the core calls through ``plugin_manager.hook`` itself, and why they are not on :class:`Notifier`.
CALLED_DIRECTLY = {
    "delayed_register_components": "an exception propagates: a plugin that cannot register stops the app",
    "delayed_add_settings": "called per implementation, to know which plugin declared what; errors stop the app",
    "delayed_app_created": "an exception propagates: a plugin that cannot set itself up stops the app",
    "delayed_doctor_checks": "an exception propagates: doctor reports it in one line",
    "delayed_executor_child_started": "fired in a child process, by the executor, through the child's plugins",
    "delayed_retry_delay": "a firstresult decision: its exception dead-letters the task",
}


def _skip(**_kwargs: object) -> None:
    """Stands in for a notification no plugin implements."""


class Notification(Generic[P]):
    """A notification hook as an attribute of :class:`Notifier`, with the parameters of its spec.

    Each Notifier shadows it with a per-instance function (:meth:`Notifier.refresh`): the pluggy call for
    an implemented hook, :func:`_skip` otherwise. The class attribute gives that function its type.
    """

    def __init__(self, spec: Callable[P, None]) -> None:
        self.name = spec.__name__

    def __get__(self, notifier: Notifier | None, owner: type | None = None) -> Callable[P, None]:
        if notifier is None:  # read off the class (documentation tools, tests)
            return _skip  # type: ignore[return-value]
        notifier.refresh()  # an instance whose attributes were cleared: set them again
        return notifier.__dict__[self.name]  # type: ignore[no-any-return]


class Notifier:
    """Fires notification hooks through typed attributes, skipping those no plugin implements."""

    # -- producer ----------------------------------------------------------------------------------
    delayed_task_enqueued = Notification(hookspecs.delayed_task_enqueued)
    delayed_task_enqueue_failed = Notification(hookspecs.delayed_task_enqueue_failed)

    def delayed_task_enqueuing(self, *, queue: str, task: PyTask) -> list[dict[str, Any]]:
        """Ask plugins for ``meta`` fields (:func:`~delayed_core.hookspecs.delayed_task_enqueuing`): the
        non-None answers, in call order."""
        if "delayed_task_enqueuing" not in self._active:
            return []
        answers = self._enqueuing(queue=queue, task=task)
        return [answer for answer in answers if answer is not None]

    # -- worker slots ------------------------------------------------------------------------------
    delayed_task_dequeued = Notification(hookspecs.delayed_task_dequeued)
    delayed_task_started = Notification(hookspecs.delayed_task_started)
    delayed_task_succeeded = Notification(hookspecs.delayed_task_succeeded)
    delayed_task_failed = Notification(hookspecs.delayed_task_failed)
    delayed_task_released = Notification(hookspecs.delayed_task_released)
    delayed_task_requeued = Notification(hookspecs.delayed_task_requeued)
    delayed_task_dead_lettered = Notification(hookspecs.delayed_task_dead_lettered)
    # -- processes ---------------------------------------------------------------------------------
    delayed_worker_started = Notification(hookspecs.delayed_worker_started)
    delayed_worker_stopped = Notification(hookspecs.delayed_worker_stopped)
    delayed_sweep_finished = Notification(hookspecs.delayed_sweep_finished)

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._active: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Re-read which hooks have implementations (after registering a plugin)."""
        self._active = frozenset(
            name for name in all_hook_names() if getattr(self._pm.hook, name).get_hookimpls()
        )
        for name, value in vars(Notifier).items():
            if isinstance(value, Notification):
                self.__dict__[name] = self._caller(name) if name in self._active else _skip
        self._enqueuing = self._caller("delayed_task_enqueuing")

    def has(self, hook_name: str) -> bool:
        """True when some plugin implements ``hook_name``; a name that is no hook is a ValueError."""
        if hook_name not in self._active and hook_name not in all_hook_names():
            raise ValueError(f"no hook is called {hook_name!r}")
        return hook_name in self._active

    def _caller(self, hook_name: str) -> Callable[..., Any]:
        """A function calling the hook with keyword arguments; it logs, never raises, a failure ([])."""
        hook = getattr(self._pm.hook, hook_name)
        expected = set(inspect.signature(getattr(hookspecs, hook_name)).parameters)

        def call(**kwargs: Any) -> Any:
            if kwargs.keys() != expected:  # pluggy would only warn: a wrong name is a bug, say so
                raise TypeError(f"{hook_name} takes {sorted(expected)}, not {sorted(kwargs)}")
            try:
                return hook(**kwargs)
            except Exception:
                logger.exception("plugin hook %s failed; the process carries on", hook_name)
                return []
        return call
