"""Every hook pydelayed calls. Implement them in a plugin with ``@delayed_core.hookimpl``.

Where a hook runs matters once tasks run in child processes: every lifecycle hook below runs in the
**worker process** (the parent), fired from the slot thread that handled the task, even when the task
itself ran in a forked or spawned child. So a counter kept by a plugin sees every task and never
vanishes with a child. Only ``delayed_executor_child_started`` runs inside the child.

Notification hooks (past tense) must be quick and must not raise: an exception is logged and the worker
keeps serving. Decision hooks are ``firstresult``: the first non-None answer wins, and an exception
propagates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .markers import hookspec

if TYPE_CHECKING:
    from .app import Delayed
    from .deadletter import DeadLetter
    from .doctor import DoctorRequest, Finding
    from .interfaces import SweepReport
    from .outcome import Outcome
    from .registry import ComponentRegistry
    from .settings import SettingsRegistry
    from .task import PyTask, Task
    from .worker import Worker


# ---------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------


@hookspec
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register brokers (with their URL schemes), serializers and executors by name.

    Runs in: every process that creates a ``Delayed`` app, once, when the app is created.

    :param registry: call ``registry.add_broker(name, cls, schemes=(...))``, ``add_serializer`` or
        ``add_executor`` on it; ``cls`` may be a ``"pkg.mod:Class"`` path, imported when first picked.
    """


@hookspec
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare the plugin's settings (``settings.add(Setting(...))``); read them with ``config.get(SETTING)``.
    Runs in: every process that resolves a configuration, before any value is read (see docs/hooks.md)."""


@hookspec
def delayed_app_created(app: Delayed) -> None:
    """An app was created: its configuration is resolved and its plugins and components are registered.

    Runs in: every process that creates a ``Delayed`` app (producers, workers, sweepers, and the
    children of executors that build an app of their own), once per app, at the end of its creation.
    An exception propagates: a plugin that cannot set itself up stops the app at start-up.

    A plugin loaded by module name (``plugins = ["pkg.mod"]``) reads its settings here
    (``app.config.get(SETTING)``, ``app.config.for_queue(name)``) and may register a configured plugin
    object with ``app.register_plugin(...)``, so it keeps no module-level state.

    :param app: the new app.
    """


# ---------------------------------------------------------------------------------------------------
# Task lifecycle (notifications)
# ---------------------------------------------------------------------------------------------------


@hookspec
def delayed_task_enqueuing(queue: str, task: PyTask) -> dict[str, Any] | None:
    """A Python task is about to be encoded and written: return fields to carry in its ``meta``.

    Runs in: the producer process, in the thread (or coroutine) that enqueues, once per ``PyTask``,
    before the task is encoded. Go tasks have no metadata element and are not offered.

    Every plugin's answer is merged into a copy of the task (the caller's object is left as it was); the
    copy is what is written and what ``delayed_task_enqueued`` or ``delayed_task_enqueue_failed`` then
    receive. Return None to add nothing: a task no plugin adds to stays byte-identical to delayed 1.2.
    An exception is logged and the task is written without that answer: a plugin never stops an enqueue.
    Keys are pydelayed's ``meta`` namespace: pick a name of your own (the tracing plugin uses ``trace``).

    :param queue: the queue name.
    :param task: the task as the caller built it.
    :return: a map of msgpack-encodable fields to add, or None.
    """


@hookspec
def delayed_task_enqueued(queue: str, task: Task) -> None:
    """A task was written to a queue (with a delay, it now waits in the scheduled set).

    Runs in: the producer process, after the broker acknowledged the write. ``enqueue_many`` fires it
    once per task.

    :param queue: the queue name.
    :param task: the task.
    """


@hookspec
def delayed_task_enqueue_failed(queue: str, task: Task, error: Exception) -> None:
    """Writing a task failed (the broker was unreachable, or the task could not be encoded).

    Runs in: the producer process, just before the error propagates to the caller of ``enqueue``;
    once per task of the failed call. The pair to ``delayed_task_enqueued``: after
    ``delayed_task_enqueuing`` exactly one of the two fires for each task.

    :param queue: the queue name.
    :param task: the task, with the fields plugins added.
    :param error: the exception the caller gets.
    """


@hookspec
def delayed_task_dequeued(queue: str, task: Task, worker_id: str) -> None:
    """A worker slot took a task from the queue and decoded it.

    Runs in: the worker process, in the slot's thread.

    :param queue: the queue name.
    :param task: the decoded task.
    :param worker_id: the slot's worker id (32 hex chars).
    """


@hookspec
def delayed_task_started(queue: str, task: PyTask, worker_id: str) -> None:
    """A task is about to run (its function was found and is allowed).

    Runs in: the worker process, in the slot's thread, just before the executor runs the task (in a
    child process for the fork and subprocess executors).

    :param queue: the queue name.
    :param task: the task.
    :param worker_id: the slot's worker id.
    """


@hookspec
def delayed_task_succeeded(queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
    """A task's function returned normally.

    Runs in: the worker process, in the slot's thread, after the executor reported the outcome.

    :param queue: the queue name.
    :param task: the task.
    :param worker_id: the slot's worker id.
    :param outcome: ``outcome.duration`` is the run time in seconds.
    """


@hookspec
def delayed_task_failed(queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
    """A task's run failed: it raised, timed out, or its process crashed.

    Runs in: the worker process, in the slot's thread, before the retry decision.

    :param queue: the queue name.
    :param task: the task.
    :param worker_id: the slot's worker id.
    :param outcome: status, error type, message and traceback excerpt.
    """


@hookspec
def delayed_task_released(queue: str, task: Task, worker_id: str) -> None:
    """A finished task was released: it no longer takes any space in the broker.

    Runs in: the worker process, in the slot's thread.

    :param queue: the queue name.
    :param task: the task.
    :param worker_id: the slot's worker id.
    """


@hookspec
def delayed_task_requeued(queue: str, task: Task, worker_id: str, delay: float) -> None:
    """A failed task was put back for a retry (``task`` is the new attempt).

    It does not fire when a worker stopping hands an unfinished task back to the queue: that is logged
    (a WARNING line), not a retry, and the task's attempt count does not change.

    Runs in: the worker process, in the slot's thread.

    :param queue: the queue name.
    :param task: the task as it was put back.
    :param worker_id: the slot's worker id.
    :param delay: seconds before it becomes available again (0 for at once).
    """


@hookspec
def delayed_task_dead_lettered(queue: str, letter: DeadLetter) -> None:
    """A task went to the queue's dead-letter list.

    Runs in: the worker process that gave up on the task. Tasks the sweeper dead-letters as poison are
    reported by ``delayed_sweep_finished`` (``report.poisoned``) instead, since no worker sees them.

    :param queue: the queue name.
    :param letter: the entry, with the reason, error, traceback excerpt and raw task bytes.
    """


# ---------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------


@hookspec
def delayed_worker_started(worker: Worker) -> None:
    """A worker claimed its ids and is about to serve.

    Runs in: the worker process, in its main thread.

    :param worker: the worker (``worker.queue_name``, ``worker.worker_ids``, ``worker.executor``).
    """


@hookspec
def delayed_worker_stopped(worker: Worker) -> None:
    """A worker stopped serving and went offline.

    Runs in: the worker process, in its main thread.

    :param worker: the worker.
    """


@hookspec
def delayed_sweep_finished(queue: str, report: SweepReport) -> None:
    """A sweep of one queue finished.

    Runs in: the sweeper process (``delayed sweeper``), after each queue's sweep.

    :param queue: the queue name.
    :param report: what the sweep did (requeued, poisoned, promoted, and the broker's ``extra`` repairs).
    """


@hookspec
def delayed_doctor_checks(app: Delayed, request: DoctorRequest) -> list[Finding] | None:
    """Check the broker (or anything a plugin owns) for ``delayed doctor``; return the findings.

    Runs in: the ``delayed doctor`` process, once per check pass (twice with ``--repair``: before and
    after the repair). Every plugin's findings are reported, in registration order. An exception
    propagates: the command fails with one line, so a check that cannot run says so as a finding instead.

    :param app: the app (``app.broker(queue)``, ``app.config``, ``app.serializer``).
    :param request: ``request.queues`` to check, and ``request.acl_user`` whose ACL rights to check.
    :return: findings (``delayed_core.doctor.Finding``), or None when this plugin has nothing to check
        (for example a broker plugin whose broker is not in use).
    """


@hookspec
def delayed_executor_child_started(executor: str, slot: int) -> None:
    """A child process that will run tasks has just started.

    Runs in: the CHILD process (a fork of the fork server, or a subprocess interpreter), before it runs
    any task. Re-create per-process resources here (connections, random seeds). Anything counted here
    stays in the child; count task events with the other hooks, which run in the worker.

    :param executor: ``"fork"`` or ``"subprocess"``.
    :param slot: the worker slot the child serves.
    """


# ---------------------------------------------------------------------------------------------------
# Decisions (firstresult)
# ---------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def delayed_retry_delay(queue: str, task: PyTask, outcome: Outcome) -> float | None:
    """Decide whether a failed task runs again, and after how long.

    Runs in: the worker process, in the slot's thread, after ``delayed_task_failed``.
    The built-in answer (``trylast``) honours the task's delayed 1.2 ``retry`` count with exponential
    backoff (the queue's ``retry_backoff*`` settings) and never retries a non-retryable outcome; the
    ``retry`` plugin adds filters and a cap. An exception raised here dead-letters the task (``internal``).

    :param queue: the queue name.
    :param task: the failed task (``task.retry`` retries left, negative = forever; ``task.attempt``).
    :param outcome: how it failed.
    :return: seconds to wait before the retry (>= 0); a negative number (``outcome.NO_RETRY``) to give
        up for good, so no later plugin retries it; None for no opinion. When no plugin answers with a
        delay the task is given up (dead-lettered).
    """


def all_hook_names() -> list[str]:
    """Names of every hook spec in this module, in definition order (used by docs and tests)."""
    return [name for name, value in globals().items() if name.startswith("delayed_") and callable(value)]

