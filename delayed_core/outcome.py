"""What came of running one task, as reported by an executor."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple


class Status(str, enum.Enum):
    """How a task run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the function raised
    TIMEOUT = "timeout"  # it ran past its time limit and was stopped
    CRASHED = "crashed"  # the process running it died (segfault, os._exit, OOM kill)


# A NamedTuple: immutable, as a frozen dataclass would be, for 0.7 us to build instead of 3.3 us (a frozen
# dataclass sets each field through object.__setattr__; an executor builds one per task run, a fifth of a
# busy slot's own CPU per no-op task). Unlike a tuple it does not show its value (see __repr__).
class Outcome(NamedTuple):
    """The result of one task run. Executors build it; the worker acts on it and hands it to hooks.

    :param status: how the run ended.
    :param duration: wall-clock seconds the run took.
    :param error_type: qualified name of the exception class (``"ValueError"``), or a label such as
        ``"Timeout"`` / ``"Crashed"``.
    :param error: the exception message, or what killed the process.
    :param traceback: a bounded excerpt of the traceback, for dead letters and logs.
    :param value: the function's return value (executors that run it in this process fill it in).
    :param retryable: False when retrying cannot help, e.g. a ``TypeError`` raised by the call itself
        (wrong arguments), as delayed 1.2 decides.
    """

    status: Status
    duration: float = 0.0
    error_type: str = ""
    error: str = ""
    traceback: str = ""
    retryable: bool = True
    #: what the function returned (kept in the worker, for tracked tasks; never shown)
    value: Any = None

    def __repr__(self) -> str:
        return (f"Outcome(status={self.status!r}, duration={self.duration!r}, error_type={self.error_type!r}, "
                f"error={self.error!r}, traceback={self.traceback!r}, retryable={self.retryable!r})")

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status is Status.SUCCEEDED

    def describe(self) -> str:
        """One line for logs: ``"ValueError: bad value"``."""
        if self.ok:
            return "succeeded"
        return f"{self.error_type}: {self.error}" if self.error else self.error_type or self.status.value


@dataclass(frozen=True)
class Unencodable:
    """Stands for a return value that could not leave the task's process, and says why."""

    reason: str


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


#: Longest exception message kept in outcomes (a task may raise with megabytes of text).
ERROR_LIMIT = 2000

#: C0 and C1 control characters other than whitespace, shown escaped so a message cannot drive a terminal.
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)] if not chr(code).isspace()}


def printable(text: str) -> str:
    """``text`` as one clean line: whitespace runs collapsed, controls and lone surrogates escaped.

    What comes out is always encodable as UTF-8, so msgpack (child processes), JSON and logs can carry it.
    """
    line = " ".join(text.split()).translate(_CONTROLS)
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """``(type name, message)`` of an exception, whatever its ``__str__`` does (raise, return a non-str,
    return megabytes). Never raises: an unprintable exception is ``<unprintable T: str() raised E>``."""
    name = printable(_type_name(exc))
    try:
        message = str(exc)
        # A str subclass could override the methods used below; work on a plain copy.
        message = str.__str__(message)
    except BaseException as error:  # even KeyboardInterrupt: it comes from the task's object, not the user
        return name, f"<unprintable {name}: str() raised {printable(_type_name(error))}>"
    line = printable(message[:ERROR_LIMIT])
    if len(message) > ERROR_LIMIT or len(line) > ERROR_LIMIT:  # escapes can lengthen it too
        line = line[: ERROR_LIMIT - 3] + "..."
    return name, line


def _type_name(exc: BaseException) -> str:
    try:
        return str.__str__(type(exc).__qualname__)
    except BaseException:  # a metaclass can make even this fail
        return "<unnamed exception type>"


def failure_outcome(exc: BaseException, duration: float, call_frame_only: bool) -> Outcome:
    """The outcome of a task whose function raised ``exc``. Never raises, whatever ``exc`` is.

    :param call_frame_only: True when the traceback ends in the executor's own frame, i.e. the call
        itself failed before the function ran (wrong arguments). Such a ``TypeError`` is not retryable,
        as delayed 1.2 decides.
    """
    import traceback

    error_type, message = describe_exception(exc)
    try:
        # Each part bounded, so that a huge message cannot push the stack out of the clipped excerpt.
        parts = traceback.format_exception(type(exc), exc, exc.__traceback__)
        text = "".join(part if len(part) <= ERROR_LIMIT else part[: ERROR_LIMIT - 4] + "...\n" for part in parts)
    except BaseException as error:  # a hostile object along the chain (``__notes__``, a cause)
        text = "".join(traceback.format_tb(exc.__traceback__)) + f"{error_type}: {message}\n" + \
            f"(the full traceback could not be formatted: {describe_exception(error)[0]})\n"
    text = clip_traceback(text).encode("utf-8", "backslashreplace").decode("utf-8")
    retryable = not (call_frame_only and issubclass(type(exc), TypeError))
    return Outcome(Status.FAILED, duration, error_type, message, text, retryable)
