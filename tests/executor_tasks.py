"""Task functions for the executor tests; child processes import this module by name.

It is also a plugin module: its ``delayed_executor_child_started`` hook records the pid of every child
that fired it, as a file in the directory named by ``EXECUTOR_TEST_HOOK_DIR`` (when set).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from delayed_core import hookimpl

HOOK_DIR_ENV = "EXECUTOR_TEST_HOOK_DIR"

#: What ``check_args`` expects: every msgpack type a task argument can have.
EXPECTED_ARGS: list[Any] = [1, -2**40, 2.5, "text é", b"\x00\xffbytes", None, True, [1, [2, "x"]],
                            {"a": [1, {"b": b"c"}], "n": None}]
EXPECTED_KWARGS: dict[str, Any] = {"key": "value", "nested": {"list": [1.5, "s", b"b"]}, "number": 7}


def noop() -> None:
    """Do nothing (overhead measurements)."""


def fail(message: str) -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)


def check_args(*args: Any, **kwargs: Any) -> None:
    """Raise unless called with exactly EXPECTED_ARGS and EXPECTED_KWARGS (types included)."""
    if list(args) != EXPECTED_ARGS or kwargs != EXPECTED_KWARGS:
        raise AssertionError(f"got args={args!r} kwargs={kwargs!r}")
    for got, expected in zip(args, EXPECTED_ARGS, strict=True):
        if type(got) is not type(expected):
            raise AssertionError(f"{got!r} is a {type(got).__name__}, expected {type(expected).__name__}")


def print_lines(count: int) -> None:
    """Print to stdout, which must not disturb the executor's own channel."""
    for index in range(count):
        print(f"line {index}", flush=True)


def spin(seconds: float) -> None:
    """Busy-loop in Python for ``seconds`` (a soft time limit can interrupt it)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def sleep(seconds: float) -> None:
    """Block in one C call (only a hard time limit can interrupt it)."""
    time.sleep(seconds)


def sleep_then_touch(seconds: float, path: str) -> None:
    """Write ``path`` with "started", sleep, then append "done"."""
    Path(path).write_text("started")
    time.sleep(seconds)
    Path(path).write_text("started done")


def _all_started(path: str, parties: int) -> bool:
    """Whether ``parties`` files beside ``path`` (its siblings included) say they started."""
    return sum(1 for sibling in Path(path).parent.iterdir() if sibling.read_text().startswith("started")) >= parties


def meet_then_touch(parties: int, timeout: float, path: str) -> None:
    """Write "started" to ``path``, wait until ``parties`` such files beside it started too (raise after
    ``timeout``), then write "started done": succeeds only when the parties run at the same time."""
    Path(path).write_text("started")
    deadline = time.monotonic() + timeout
    while not _all_started(path, parties):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other {parties - 1} did not run at the same time")
        time.sleep(0.01)
    Path(path).write_text("started done")


def exit_process(code: int) -> None:
    """End the process at once, as a crashing extension would."""
    os._exit(code)


def segfault() -> None:
    """Read address 0 (without pytest's faulthandler dumping the copied test stack of a forked child)."""
    faulthandler.disable()
    ctypes.string_at(0)


def kill_self() -> None:
    """SIGKILL our own process, as the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def write_pid(path: str) -> None:
    """Write the pid of the process running the task to ``path``."""
    Path(path).write_text(str(os.getpid()))


# -- async tasks and awaitables ------------------------------------------------------------------


async def async_touch(path: str, text: str = "ran") -> None:
    """Yield to the loop once, then write ``text`` to ``path`` (proves the body ran to its end)."""
    await asyncio.sleep(0)
    Path(path).write_text(text)


async def async_fail(message: str) -> None:
    """Yield to the loop once, then raise ValueError(message)."""
    await asyncio.sleep(0)
    raise ValueError(message)


async def async_sleep(seconds: float) -> None:
    """Sleep without blocking the loop (concurrency and cancellation tests)."""
    await asyncio.sleep(seconds)


async def async_sleep_then_touch(seconds: float, path: str) -> None:
    """Write "started", sleep on the loop, then write "started done"."""
    Path(path).write_text("started")
    await asyncio.sleep(seconds)
    Path(path).write_text("started done")


async def async_meet_then_touch(parties: int, timeout: float, path: str) -> None:
    """:func:`meet_then_touch`, waiting on the loop."""
    Path(path).write_text("started")
    deadline = time.monotonic() + timeout
    while not _all_started(path, parties):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other {parties - 1} did not run at the same time")
        await asyncio.sleep(0.01)
    Path(path).write_text("started done")


async def async_loop_identity(path: str) -> None:
    """Append ``<pid> <thread id> <id of the running loop>`` as a line to ``path``."""
    loop = asyncio.get_running_loop()
    with open(path, "a") as file:
        file.write(f"{os.getpid()} {threading.get_ident()} {id(loop)}\n")


async def async_ignores_cancellation(seconds: float) -> None:
    """Swallow every cancellation and sleep on until ``seconds`` have passed (a badly behaved task)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(end - time.monotonic())


def returns_coroutine(path: str) -> Any:
    """A plain function that returns a coroutine: the executor must await it."""
    return async_touch(path, "awaited")


def returns_failing_coroutine(message: str) -> Any:
    """A plain function that returns a coroutine which raises."""
    return async_fail(message)


# -- process lifetimes ----------------------------------------------------------------------------


def spin_with_pid(path: str, seconds: float) -> None:
    """Write our pid to ``path``, then busy-loop for ``seconds`` (an orphan would show at 100% CPU)."""
    Path(path).write_text(str(os.getpid()))
    spin(seconds)


def sleep_with_pid_then_return(path: str, seconds: float) -> None:
    """Write our pid to ``path``, sleep, then return (an orphan would then write its reply to nobody)."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def spawn_grandchild(path: str, ignore_sigterm: bool = False) -> None:
    """Start ``sleep 1000`` as a child of the task process, write its pid to ``path``, then block."""
    import subprocess

    # An ignored signal stays ignored across exec: this sleep shrugs off the SIGTERM at the time limit.
    argv = ["sh", "-c", "trap '' TERM; exec sleep 1000"] if ignore_sigterm else ["sleep", "1000"]
    grandchild = subprocess.Popen(argv)
    Path(path).write_text(str(grandchild.pid))
    time.sleep(1000)


# -- hostile exceptions ---------------------------------------------------------------------------

#: What each ``str`` behaviour of :func:`raise_hostile` does when the exception is printed.
HOSTILE_STR = ("ok", "raises", "raises_base", "not_a_string", "surrogate", "huge", "raises_itself")


class HostileError(ValueError):
    """An exception whose printing misbehaves as its ``spec`` says (see :func:`raise_hostile`)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__("hostile")
        self.spec = spec
        if spec.get("unpicklable"):
            self.lock = threading.Lock()  # pickle refuses locks, and so does copy

    def __str__(self) -> str:
        how = self.spec.get("str", "ok")
        if how == "raises":
            raise RuntimeError("__str__ refuses")
        if how == "raises_base":
            raise KeyboardInterrupt
        if how == "not_a_string":
            return 42  # type: ignore[return-value]
        if how == "surrogate":
            return "half a pair \ud800 and a NUL \x00"
        if how == "huge":
            return "x" * 5_000_000
        if how == "raises_itself":
            raise self
        return "plain message"

    def __repr__(self) -> str:
        if self.spec.get("repr_raises"):
            raise RuntimeError("__repr__ refuses")
        return "HostileError(...)"

    def __reduce__(self) -> Any:
        raise TypeError("HostileError cannot be pickled")


def raise_hostile(spec: dict[str, Any]) -> None:
    """Raise a HostileError built from ``spec`` (msgpack data, so children can get it too).

    Keys: ``str`` (one of HOSTILE_STR), ``repr_raises``, ``unpicklable``, ``notes`` (a non-list
    ``__notes__``), ``cause`` (chain a second hostile error as ``__cause__``).
    """
    error = HostileError(spec)
    if spec.get("notes"):
        error.__notes__ = 42  # type: ignore[assignment]
    if spec.get("cause"):
        raise error from HostileError({**spec, "cause": False})
    raise error


@hookimpl
def delayed_executor_child_started(executor: str, slot: int) -> None:
    """Record ``<executor>-<slot>-<pid>`` as a file, proving the hook ran in that process."""
    directory = os.environ.get(HOOK_DIR_ENV)
    if directory:
        Path(directory, f"{executor}-{slot}-{os.getpid()}").touch()
