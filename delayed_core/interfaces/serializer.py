"""The Serializer interface: tasks to bytes and back."""

from __future__ import annotations

import abc
from typing import Any

from ..task import Task


class Serializer(abc.ABC):
    """Turns tasks into the bytes a broker stores, and back.

    ``loads`` must never execute anything it reads (no pickle): queue contents are untrusted input.
    It raises :class:`~delayed_core.errors.TaskDecodeError` with a one-line reason for bytes it cannot read.
    """

    #: name used in configuration (``serializer = "msgpack"``)
    name: str = ""

    @abc.abstractmethod
    def dumps(self, task: Task) -> bytes:
        """Encode one task."""

    @abc.abstractmethod
    def loads(self, data: bytes) -> Task:
        """Decode one task, or raise TaskDecodeError."""

    def dumps_value(self, value: Any) -> bytes:
        """Encode a tracked task's return value (docs/results.md); TypeError when it cannot be.
        The default stores no values: tracked tasks then succeed without one."""
        raise TypeError(f"the {self.name or type(self).__name__} serializer stores no return values")

    def loads_value(self, data: bytes) -> Any:
        """Decode what :meth:`dumps_value` wrote. Like ``loads``, never executes what it reads."""
        raise TypeError(f"the {self.name or type(self).__name__} serializer stores no return values")
