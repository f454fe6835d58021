"""Calling a task function and the outcomes reported about it: the one routine every executor uses.

:func:`call_task` runs in the slot thread (thread, asyncio) or in the task process (fork, subprocess):
where the task runs. It resolves the function there (the worker only checked that its path is allowed,
which imports nothing), calls it, awaits what it returned when that is awaitable (an ``async def`` task, or a plain
function that returned a coroutine or a future: a coroutine nobody awaits never counts as a success),
and builds the outcome. The executor supplies how to await (:class:`Await`) and, for in-process
executors, a soft limit for the synchronous part (:class:`Limit`).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from delayed_core.errors import TaskTimeout
from delayed_core.outcome import Outcome, Status, failure_outcome

from .awaiting import CANCEL_GRACE, Interrupted


class Await(Protocol):
    """Runs an awaitable to its end; raises TaskTimeout after ``timeout`` seconds (None: no limit)."""

    def __call__(self, awaitable: Awaitable[Any], timeout: float | None) -> Any: ...


class Limit(Protocol):
    """A context manager factory that raises TaskTimeout in the block after ``seconds`` (the watchdog)."""

    def __call__(self, seconds: float) -> AbstractContextManager[None]: ...


class Guard(Protocol):
    """A context manager factory around the synchronous call that another thread may stop (a cancel)."""

    def __call__(self) -> AbstractContextManager[None]: ...


def call_task(resolve: Callable[[str], Callable[..., Any]], path: str, args: Sequence[Any],
              kwargs: Mapping[str, Any], *, run_awaitable: Await, executor: str, timeout: float | None = None,
              limit: Limit | None = None, guard: Guard | None = None) -> Outcome:
    """Resolve ``path``, call the function with ``args`` and ``kwargs``, await its result if awaitable, and
    report how it went; never raises.

    A path that does not resolve here fails without retry: another attempt would meet the same setup.

    :param resolve: the function registry's ``resolve`` of this process.
    :param timeout: seconds for the whole run, or None. The synchronous part is bounded by ``limit``
        (when given), the awaitable by cancellation at what remains of it (``run_awaitable``). Task
        processes pass none: their limit is hard, enforced by the supervisor killing them.
    :param limit: a soft limit for the synchronous part; for the awaitable it is only a backstop,
        :data:`~.awaiting.CANCEL_GRACE` seconds after the deadline, for a coroutine that blocks its loop.
    :param guard: entered around the synchronous call only, where the executor may raise
        :class:`~.awaiting.Interrupted` from another thread (in-process executors; see ``watchdog.Stopper``).
    """
    try:
        func = resolve(path)
    except Exception as exc:
        return Outcome(Status.FAILED, 0.0, type(exc).__qualname__, str(exc), "", retryable=False)
    started = time.perf_counter()
    result: Any = None
    value: Any = None
    awaiting = False
    # This runs once per task: no message or awaitable check unless one is needed.
    try:
        with limit(timeout) if limit and timeout else contextlib.nullcontext(), \
                guard() if guard else contextlib.nullcontext():
            result = func(*args, **kwargs)
        if result is not None and inspect.isawaitable(result):  # None, the usual result, never is
            awaiting = True
            remaining = None if not timeout else max(0.0, timeout - (time.perf_counter() - started))
            backstop = None if remaining is None else remaining + 2 * CANCEL_GRACE
            with limit(backstop) if limit and backstop else contextlib.nullcontext():
                value = run_awaitable(result, remaining)
        else:
            value = result
    except TaskTimeout:
        how = f"cancelled by the {executor} executor" if awaiting else f"soft limit: {executor} executor"
        return Outcome(Status.TIMEOUT, time.perf_counter() - started, "Timeout",
                       f"ran past its time limit of {timeout or 0:g}s ({how})")
    except Interrupted:
        return Outcome(Status.CRASHED, time.perf_counter() - started, "Crashed",
                       f"the task was interrupted: cancelled, or still running at shutdown ({executor} executor)")
    except BaseException as exc:  # a task's SystemExit or KeyboardInterrupt is its failure, not ours
        tb = exc.__traceback__
        return failure_outcome(exc, time.perf_counter() - started, tb is None or tb.tb_next is None)
    finally:
        if (result is not None and inspect.iscoroutine(result)
                and inspect.getcoroutinestate(result) == inspect.CORO_CREATED):
            result.close()  # never started (a limit fired first): close it, without a "never awaited" warning
    return Outcome(Status.SUCCEEDED, time.perf_counter() - started, value=value)


def crashed(how: str, duration: float, executor: str) -> Outcome:
    """The task's process died (segfault, os._exit, OOM kill) before reporting."""
    return Outcome(Status.CRASHED, duration, "Crashed", f"the {executor} task process {how}")


def timed_out(timeout: float | None, duration: float, executor: str) -> Outcome:
    """The task ran past its limit and its process was killed."""
    limit = f"{timeout:g}s" if timeout else "?"
    return Outcome(Status.TIMEOUT, duration, "Timeout",
                   f"ran past its time limit of {limit} (hard limit: the {executor} executor killed it)")


def unportable_arguments(exc: BaseException) -> Outcome:
    """The arguments cannot be sent to a child as msgpack (only possible for tasks built in-process)."""
    return Outcome(Status.FAILED, 0.0, type(exc).__qualname__,
                   f"the arguments cannot be passed to a child process as msgpack: {exc}", "", retryable=False)
