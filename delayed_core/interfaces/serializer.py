"""The Serializer interface: tasks to bytes and back."""

from __future__ import annotations

import abc

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
