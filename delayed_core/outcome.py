"""What came of running one task, as reported by an executor."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(str, enum.Enum):
    """How a task run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the function raised
    TIMEOUT = "timeout"  # it ran past its time limit and was stopped
    CRASHED = "crashed"  # the process running it died (segfault, os._exit, OOM kill)


@dataclass(frozen=True)
class Outcome:
    """The result of one task run. Executors build it; the worker acts on it and hands it to hooks.

    :param status: how the run ended.
    :param duration: wall-clock seconds the run took.
    :param error_type: qualified name of the exception class (``"ValueError"``), or a label such as
        ``"Timeout"`` / ``"Crashed"``.
    :param error: the exception message, or what killed the process.
    :param traceback: a bounded excerpt of the traceback, for dead letters and logs.
    :param retryable: False when retrying cannot help, e.g. a ``TypeError`` raised by the call itself
        (wrong arguments), as delayed 1.2 decides.
    """

    status: Status
    duration: float = 0.0
    error_type: str = ""
    error: str = ""
    traceback: str = ""
    retryable: bool = True

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status is Status.SUCCEEDED

    def describe(self) -> str:
        """One line for logs: ``"ValueError: bad value"``."""
        if self.ok:
            return "succeeded"
        return f"{self.error_type}: {self.error}" if self.error else self.error_type or self.status.value


#: What a ``delayed_retry_delay`` implementation returns to refuse a retry for good. ``None`` would only
#: mean "no opinion" and let a later plugin (such as the built-in default) retry the task anyway.
NO_RETRY: float = -1.0

#: Longest traceback excerpt kept in outcomes and dead letters.
TRACEBACK_LIMIT = 4000


def clip_traceback(text: str, limit: int = TRACEBACK_LIMIT) -> str:
    """Keep the end of a traceback (where the error is), bounded to ``limit`` characters."""
    if len(text) <= limit:
        return text
    return "...\n" + text[-(limit - 4) :]


def failure_outcome(exc: BaseException, duration: float, call_frame_only: bool) -> Outcome:
    """The outcome of a task whose function raised ``exc``.

    :param call_frame_only: True when the traceback ends in the executor's own frame, i.e. the call
        itself failed before the function ran (wrong arguments). Such a ``TypeError`` is not retryable,
        as delayed 1.2 decides.
    """
    import traceback

    text = clip_traceback("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    retryable = not (call_frame_only and isinstance(exc, TypeError))
    return Outcome(Status.FAILED, duration, type(exc).__qualname__, " ".join(str(exc).split()), text, retryable)
