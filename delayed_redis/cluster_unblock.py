"""A BLPOP that another thread can end: the wait helpers of cluster_wait.py send theirs through here.

A slot serving several queues in the cluster layout blocks with one BLPOP per queue. When one of them
gives a notification, the others must end before the slot goes on: a BLPOP still blocked would pop the
notification of a task enqueued just after, and until it gave it back the slot would not see that task,
and would take a task of a lower queue first. ``CLIENT UNBLOCK <id>`` ends a BLPOP at once, and
atomically: the BLPOP has either popped (its reply is on its way) or it returns nil. It needs the id of
the connection the BLPOP runs on, so :func:`blocking_pop` picks that connection itself, from the pool of
the node serving the key's slot, and asks its id once per connection (``CLIENT ID``).

A redirection (MOVED, ASK: the slot moves) is the cluster client's to follow: :class:`Redirected` tells
the caller to send that BLPOP through the client instead (which cannot be ended early: a rare case).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.cluster

from .connection import is_cluster_client

#: answers that mean "not this node" (or "not now"): the cluster client knows what to do with them
REDIRECTIONS = (redis.exceptions.AskError, redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError,
                redis.exceptions.RedisClusterException)


class Redirected(Exception):
    """The key's slot is elsewhere or moving: send the command through the cluster client."""


class Blocker:
    """Where one BLPOP runs: the node's client and the id of the connection (for ``CLIENT UNBLOCK``)."""

    def __init__(self, node: redis.Redis, client_id: int) -> None:
        self.node = node
        self.client_id = client_id


def node_of(client: Any, key: str) -> redis.Redis:
    """The client of the node serving ``key``'s slot (``client`` itself on one plain Redis)."""
    if not is_cluster_client(client):
        return client
    try:
        return client.get_redis_connection(client.get_node_from_key(key))
    except REDIRECTIONS as exc:
        raise Redirected(str(exc)) from exc


def _client_id(connection: Any) -> int:
    """The server's id of ``connection`` (connected now if it was not), asked once per socket."""
    if connection._sock is None:
        connection.connect()
    known = getattr(connection, "_delayed_client_id", None)
    if known is None or known[0] is not connection._sock:
        connection.send_command("CLIENT", "ID")
        known = connection._delayed_client_id = (connection._sock, int(connection.read_response()))
    return int(known[1])


def blocking_pop(client: Any, key: str, block: float, started: Callable[[Blocker], bool]) -> Any:
    """``BLPOP key block`` on a connection of the node serving ``key``; ``started(blocker)`` is called just
    before the command is sent, so that another thread may end it with :func:`unblock` (when it returns
    False, nothing is sent: None). Raises :class:`Redirected` when the slot is not (or no longer only) on
    that node."""
    node = node_of(client, key)
    pool = node.connection_pool
    connection = pool.get_connection()
    try:
        if not started(Blocker(node, _client_id(connection))):
            return None
        connection.send_command("BLPOP", key, block)
        return node.parse_response(connection, "BLPOP")
    except REDIRECTIONS as exc:
        raise Redirected(str(exc)) from exc
    except BaseException:
        connection.disconnect()  # a reply may be left unread on it: never hand it out again
        raise
    finally:
        pool.release(connection)


def unblock(blockers: Iterable[Blocker]) -> redis.exceptions.NoPermissionError | None:
    """``CLIENT UNBLOCK`` every one of ``blockers``: one pipeline (one round trip) per node. A node that
    does not answer is passed over (its BLPOPs fail by themselves). Returns the refusal of a node whose ACL
    does not allow the command, None when none refused."""
    by_node: dict[int, list[Blocker]] = {}
    for blocker in blockers:
        by_node.setdefault(id(blocker.node), []).append(blocker)
    refused = None
    for group in by_node.values():
        try:
            with group[0].node.pipeline(transaction=False) as pipe:
                for blocker in group:
                    pipe.execute_command("CLIENT", "UNBLOCK", blocker.client_id)
                pipe.execute()
        except redis.exceptions.NoPermissionError as exc:
            refused = exc
        except redis.exceptions.RedisError:
            continue
    return refused
