"""Process IPC between a worker and its task processes: msgpack messages over a connected socket.

Only msgpack crosses the process boundary, in both directions, never pickle: decoding a message cannot
run code, so a compromised or confused child cannot attack the worker through its replies, and task
arguments travel in exactly the form they had on the queue (msgpack is what the queue holds anyway).

msgpack is self-delimiting, so a stream needs no length prefix: :class:`Channel` feeds what it reads
into a streaming unpacker and hands out whole messages.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import msgpack

from delayed_core.disposition import describe_error
from delayed_core.outcome import ERROR_LIMIT, Outcome, Status, Unencodable
from delayed_core.task import PyTask

from .calling import unportable_arguments


class ChannelClosed(Exception):
    """The other end of a channel went away (its process exited or closed it)."""


class Channel:
    """A two-way stream of msgpack messages over one connected socket.

    One thread receives; sends are serialized by a lock because a worker's main thread may send an
    interrupt while the slot thread waits for a reply.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self._send_lock = threading.Lock()

    def fileno(self) -> int:
        """The socket's file descriptor (for selectors)."""
        return self.sock.fileno()

    def send(self, message: Mapping[str, Any]) -> None:
        """Send one message. Raises OSError when the other end is gone."""
        data = msgpack.packb(message, use_bin_type=True)
        with self._send_lock:
            self.sock.sendall(data)

    def receive(self, timeout: float | None = None) -> Any:
        """Block until one message arrives and return it.

        :raises TimeoutError: nothing complete arrived within ``timeout`` seconds.
        :raises ChannelClosed: the other end closed the stream.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for message in self._unpacker:
                return message
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                    raise TimeoutError
            self._feed()

    def drain(self) -> list[Any]:
        """Read what is available now (call when the socket is readable) and return whole messages."""
        self._feed()
        return list(self._unpacker)

    def _feed(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            raise ChannelClosed
        self._unpacker.feed(data)

    def close(self) -> None:
        """Close the socket (the other end then sees ChannelClosed)."""
        self.sock.close()


def channel_pair() -> tuple[Channel, Channel]:
    """Two connected channels: one for the worker, one for the child."""
    left, right = socket.socketpair()
    return Channel(left), Channel(right)


def run_request(task: PyTask) -> dict[str, Any] | Outcome:
    """The message asking a child to run ``task``; or, when an argument is not msgpack data (possible only
    for a task built in-process), the outcome that fails the task without retry."""
    request = {"op": "run", "path": task.func_path, "args": list(task.args), "kwargs": dict(task.kwargs)}
    try:
        msgpack.packb(request, use_bin_type=True)  # fail here, in the caller, rather than mid-send
    except (TypeError, ValueError, OverflowError) as exc:
        return unportable_arguments(exc)
    return request


def outcome_to_wire(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a msgpack-able dict."""
    return {
        "status": outcome.status.value,
        "duration": outcome.duration,
        "error_type": outcome.error_type,
        "error": outcome.error[:ERROR_LIMIT],
        "traceback": outcome.traceback,
        "retryable": outcome.retryable,
        **value_to_wire(outcome.value),
    }


def value_to_wire(value: Any) -> dict[str, Any]:
    """The return value for the parent (tracked tasks store it), or why it cannot cross as msgpack."""
    if value is None:
        return {}
    try:
        msgpack.packb(value, use_bin_type=True)
    except Exception as exc:  # any value may come back from a task
        return {"value_error": f"the return value cannot be encoded with msgpack: {describe_error(exc)}"}
    return {"value": value}


def outcome_from_wire(message: Mapping[str, Any]) -> Outcome:
    """The outcome a child reported."""
    return Outcome(
        Status(message["status"]),
        float(message["duration"]),
        str(message["error_type"]),
        str(message["error"]),
        str(message["traceback"]),
        bool(message["retryable"]),
        message["value"] if "value" in message else Unencodable(str(message["value_error"]))
        if "value_error" in message else None,
    )


def describe_exit(wait_status: int) -> str:
    """What ended a process, from its ``waitpid`` status: ``"was killed by SIGSEGV (signal 11)"``."""
    code = os.waitstatus_to_exitcode(wait_status)
    return describe_exit_code(code)


def describe_exit_code(code: int) -> str:
    """What ended a process, from an exit code where a negative value is a signal (subprocess style)."""
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by {name} (signal {-code})"
    return f"exited with code {code}"
