"""Turning redis-py errors into pydelayed errors, each one readable line.

Retrying later is the right answer for more than a lost connection: a server busy with a long script
(``BUSY``), a replica that was demoted or promoted (``READONLY``), a server at ``maxmemory`` (``OOM``), a
password or ACL an operator is fixing. Those become :class:`BrokerUnavailable` subclasses, so workers and
sweepers back off and retry instead of crashing, and producers see one clear line. Any other error reply
(a key of the wrong type, a script error) becomes :class:`BrokerCommandError`: retrying will not help until
someone fixes the data, but it still reads as one line.
"""

from __future__ import annotations

import re

import redis

from delayed_core.errors import BrokerUnavailable, DelayedError
from delayed_core.redact import redact

#: Errors that mean "Redis is not reachable right now", as opposed to a bug in a command.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.BusyLoadingError,
               # An ACL that forbids a command is an operator's fix away, like a wrong password: report
               # it in one line and keep retrying rather than crash.
               redis.exceptions.NoPermissionError)


class BrokerOutOfMemory(BrokerUnavailable):
    """Redis refused a write because it reached ``maxmemory`` (with the ``noeviction`` policy)."""


class BrokerReadOnly(BrokerUnavailable):
    """Redis refused a write because it is (now) a read-only replica."""


class BrokerBusy(BrokerUnavailable):
    """Redis is running a long script or function and answers nothing else until it ends."""


class BrokerCommandError(DelayedError):
    """Redis answered a command with an error that retrying will not fix (e.g. a key of the wrong type)."""


#: redis-py's prefix on an error inside a pipeline: it quotes the command, task bytes included
_PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


def describe(exc: BaseException) -> str:
    """One line for logs: redis-py's messages can span lines, and quote a pipeline's task bytes."""
    text = _PIPELINE_PREFIX.sub("", str(exc))
    return redact(" ".join(text.split()) or type(exc).__name__)


def translate(exc: redis.exceptions.RedisError) -> DelayedError:
    """The pydelayed error for a redis-py error (raise it ``from exc``)."""
    text = describe(exc)
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or text.startswith("OOM "):
        return BrokerOutOfMemory(f"Redis is out of memory (maxmemory reached): {text}")
    if isinstance(exc, redis.exceptions.ReadOnlyError) or text.startswith("READONLY "):
        return BrokerReadOnly(f"Redis is read-only (a replica?): {text}")
    if text.startswith("BUSY "):
        return BrokerBusy(f"Redis is busy running a script: {text}")
    if isinstance(exc, UNAVAILABLE):
        return BrokerUnavailable(text)
    return BrokerCommandError(f"Redis refused a command: {text}")
