"""Exceptions raised by pydelayed.

Every error a user can meet derives from :class:`DelayedError`, so the CLI can turn any of them into a
single readable line instead of a traceback.
"""

from __future__ import annotations


class DelayedError(Exception):
    """Base class of every pydelayed error."""


class ConfigError(DelayedError):
    """A setting, flag or component name is invalid. Raised at start-up, never while serving."""


class BrokerUnavailable(DelayedError):
    """The broker (the default plugin: Redis) could not be reached or dropped the connection.

    Workers and sweepers catch this, back off and retry; producers see it raised from ``enqueue``.
    """


class TaskDecodeError(DelayedError):
    """Bytes taken from a queue are not a task this serializer can read."""


class TaskNotAllowed(DelayedError):
    """A task names a function the worker was not told it may run."""


class TaskTimeout(DelayedError):
    """A task ran past its time limit."""


class WorkerIdTaken(DelayedError):
    """No free worker id could be claimed (practically impossible with 128-bit ids)."""
