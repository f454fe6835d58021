"""Running one task function inside a task process, and the outcomes a supervisor reports about it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from delayed_core.outcome import Outcome, Status, failure_outcome


def call_task(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Outcome:
    """Call ``func(*args, **kwargs)`` and report how it went; never raises."""
    started = time.perf_counter()
    try:
        func(*args, **kwargs)
    except BaseException as exc:  # a task's SystemExit or KeyboardInterrupt is its failure, not ours
        tb = exc.__traceback__
        return failure_outcome(exc, time.perf_counter() - started, tb is None or tb.tb_next is None)
    return Outcome(Status.SUCCEEDED, time.perf_counter() - started)


def run_requested(resolve: Callable[[str], Callable[..., Any]], request: Mapping[str, Any]) -> Outcome:
    """In a task process: resolve the function a run request names, again on this side, and call it.

    A function the child cannot resolve fails the task without retry: another attempt would meet the same
    child setup.
    """
    try:
        func = resolve(request["path"])
    except Exception as exc:
        return Outcome(Status.FAILED, 0.0, type(exc).__qualname__, str(exc), "", retryable=False)
    return call_task(func, request["args"], request["kwargs"])


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
