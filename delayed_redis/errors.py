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


class BrokerClusterError(BrokerUnavailable):
    """A Redis Cluster answer that says "not here" or "not now": a slot moving between nodes, a node
    down, or a command whose keys span hash slots (a key layout that does not fit the cluster). Retried
    with backoff like an outage: the first passes by itself, the others once an operator fixes them."""


#: error replies of a Redis Cluster node, and what each one means to a pydelayed user
_CLUSTER_REPLIES = {
    "MOVED": "a Redis Cluster node sent the command to another node: connect with a redis+cluster:// URL",
    "ASK": "a Redis Cluster node sent the command to another node: connect with a redis+cluster:// URL",
    "CROSSSLOT": "the keys of one command are in different hash slots: the go-delayed key layout cannot "
                 "run on a Redis Cluster; use a redis+cluster:// URL (key_layout = \"cluster\")",
    "TRYAGAIN": "a queue's hash slot is being moved between Redis Cluster nodes",
    "CLUSTERDOWN": "the Redis Cluster is down or a slot has no node (a node failed?)",
}


#: redis-py's classes for those replies (their messages lose the reply's first word)
_CLUSTER_CLASSES = {redis.exceptions.MovedError: "MOVED", redis.exceptions.AskError: "ASK",
                    redis.exceptions.ClusterCrossSlotError: "CROSSSLOT", redis.exceptions.TryAgainError: "TRYAGAIN",
                    redis.exceptions.ClusterDownError: "CLUSTERDOWN", redis.exceptions.MasterDownError: "CLUSTERDOWN"}


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
    first = _CLUSTER_CLASSES.get(type(exc), text.split(" ", 1)[0])
    if first in _CLUSTER_REPLIES:
        return BrokerClusterError(f"{_CLUSTER_REPLIES[first]}: {text}")
    if isinstance(exc, redis.exceptions.ClusterError):  # redirected too often ("TTL exhausted")
        return BrokerClusterError(f"the Redis Cluster kept redirecting the command (a reshard?): {text}")
    if isinstance(exc, UNAVAILABLE):
        return BrokerUnavailable(text)
    return BrokerCommandError(f"Redis refused a command: {text}")
