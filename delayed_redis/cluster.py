"""Redis Cluster broker URLs: ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (TLS:
``rediss+cluster://``), with the usual redis-py connection options in the query string.

The nodes listed are only where the client starts: it reads the slot map from the first that answers,
and follows the cluster from then on. Such a URL implies the cluster key layout (keys.py), in which every
key of one queue shares one hash slot, so that every script runs on one node.

How redis-py's :class:`~redis.cluster.RedisCluster` is set up, and why:

- MOVED and ASK (a slot that moved, or is moving, to another node) are followed inside redis-py before a
  command is ever answered: the command did not run on the node that redirected it, so following is
  safe. TRYAGAIN (a multi-key command while the slot's keys are split between two nodes) is retried with
  a short sleep.
- No other retry (``Retry(NoBackoff(), 0)``), as for one Redis: a script whose reply was lost must not be
  sent again blindly. A connection error leaves as :class:`~delayed_core.errors.BrokerUnavailable`, and
  workers back off and retry, with the slot map read again on the next call.
- redis-py raises :class:`~redis.exceptions.RedisClusterException`, which is not a ``RedisError``, when it
  cannot reach any node or finds a slot not covered; the client here raises :class:`ClusterUnavailable`
  (a connection error) instead, so every caller's usual handling gives one line and a backoff.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from delayed_core.errors import ConfigError

from .sentinel import host_port

SCHEMES = ("redis+cluster", "rediss+cluster")
DEFAULT_PORT = 6379


class ClusterUnavailable(redis.exceptions.ConnectionError):
    """No node of the cluster answers for a key's slot (a node down, or no node reachable at all)."""


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.split("://", 1)[0].lower() in SCHEMES


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The start nodes and the connection options of a cluster URL (options parsed by redis-py itself,
    from the URL rewritten as a ``redis://`` one, so they mean what they mean there)."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = [host_port(item.strip(), DEFAULT_PORT) for item in hosts.split(",") if item.strip()]
    if not nodes:
        raise ValueError("no host:port")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only: leave the path out")
    tls = parts.scheme.lower() == "rediss+cluster"
    plain = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}cluster-node"
    options = redis.connection.parse_url(plain + (f"?{parts.query}" if parts.query else ""))
    for key in ("host", "port", "connection_class", "db"):
        options.pop(key, None)
    if tls:
        options["ssl"] = True
    return nodes, options


def _parsed(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    try:
        return parse_cluster_url(url)
    except ValueError as exc:
        # No URL in the message: it may hold a password.
        raise ConfigError(f"invalid cluster broker URL: {exc}") from None


def _plain_errors(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` raising ClusterUnavailable where redis-py raises RedisClusterException."""
    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except redis.exceptions.RedisClusterException as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            # redis-py's own check of a multi-key command: a key layout that does not fit the cluster
            if "same slot" in text or "same key slot" in text:
                raise redis.exceptions.ClusterCrossSlotError(text) from exc
            raise ClusterUnavailable(text) from exc
    return wrapper


def _redirect_as_moving(call: Callable[..., Any]) -> Callable[..., Any]:
    """A pipeline's ``execute`` raising TRYAGAIN ("the slot is moving") where redis-py lets a MOVED or ASK
    out of a MULTI/EXEC (it follows them for single commands only). Nothing of the transaction ran: the
    caller's retry with backoff sends it again to the slot's new node."""
    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except redis.exceptions.AskError as exc:  # MovedError is an AskError
            raise redis.exceptions.TryAgainError(f"slot moved during a transaction ({exc})") from exc
    return wrapper


class ClusterClient(redis.cluster.RedisCluster):
    """redis-py's cluster client whose errors are all ``RedisError`` (see the module docstring)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Send one command to the node that serves its keys' slot."""
        if args[:2] == ("SCRIPT", "LOAD") and "target_nodes" not in kwargs:
            return self._load_script(*args)
        return _plain_errors(super().execute_command)(*args, **kwargs)

    def _load_script(self, *args: Any) -> Any:
        """SCRIPT LOAD on every primary that answers (redis-py sends it to all, and fails if one is down:
        then no script could run anywhere). A node that was down loads it on its own NOSCRIPT later."""
        reply, failure = None, None
        for node in self.get_primaries():
            try:
                reply = self.execute_command(*args, target_nodes=node)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                failure = exc
        if reply is None and failure is not None:
            raise failure
        return reply

    def command(self, **kwargs: Any) -> Any:
        """COMMAND (which redis-py reads once, when the client is made) from the first node that answers:
        redis-py asks its default node only, so a client made while that one node was down would fail."""
        failure: redis.exceptions.RedisError | None = None
        for node in [self.get_default_node(), *self.get_primaries()]:
            try:
                reply = self.execute_command("COMMAND", target_nodes=node, **kwargs)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                failure = exc
                continue
            self.replace_default_node(node)  # keyless commands go to a node that answers, too
            return reply
        assert failure is not None
        raise failure

    def get_node(self, host: Any = None, port: Any = None, node_name: Any = None) -> Any:
        """The node named, known to the slot map or not: an ASK may name a node that serves no slot yet
        (a new shard importing its first slot), which redis-py's map leaves out (it then fails with an
        AttributeError on None; redis-py#4015)."""
        node = super().get_node(host, port, node_name)
        if node is None and (node_name or host):
            host, port = _address(node_name or f"{host}:{port}")
            node = redis.cluster.ClusterNode(host, port, redis.cluster.PRIMARY)
            self.nodes_manager.nodes_cache[node.name] = node
        return node

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A cluster pipeline (commands grouped per node; a transaction needs one slot)."""
        pipe = _plain_errors(super().pipeline)(transaction, shard_hint)
        # The pipeline is a RedisCluster of its own that follows an ASK by itself: with this client's
        # get_node, a redirect to a slotless node works there too (it shares the slot map).
        pipe.get_node = self.get_node
        pipe.execute = _plain_errors(_redirect_as_moving(pipe.execute))
        return pipe


class AsyncClusterClient(redis.asyncio.cluster.RedisCluster):
    """redis-py's asyncio cluster client, following an ASK to a node that serves no slot yet."""

    def get_node(self, host: Any = None, port: Any = None, node_name: Any = None) -> Any:
        """The node named, known to the slot map or not (see :meth:`ClusterClient.get_node`)."""
        node = super().get_node(host, port, node_name)
        if node is None and (node_name or host):
            manager = self.nodes_manager
            host, port = _address(node_name or f"{host}:{port}")
            node = redis.asyncio.cluster.ClusterNode(host, port, redis.cluster.PRIMARY, **manager.connection_kwargs)
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node


def _address(name: str) -> tuple[str, int]:
    """(host, port) of a node name ``host:port`` (the host may be an IPv6 address with colons)."""
    host, _, port = str(name).rpartition(":")
    return host, int(port)


def cluster_client(url: str, options: dict[str, Any]) -> ClusterClient:
    """A cluster client for ``url`` with the project's connection ``options`` (the URL's own win)."""
    nodes, url_options = _parsed(url)
    merged = {**options, **url_options}
    merged.pop("retry", None)
    return _plain_errors(ClusterClient)(
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in nodes],
        retry=Retry(NoBackoff(), 0), **merged)


def async_cluster_client(url: str, options: dict[str, Any]) -> AsyncClusterClient:
    """The asyncio counterpart of :func:`cluster_client` (it connects on its first command)."""
    nodes, url_options = _parsed(url)
    merged = {**options, **url_options}
    merged.pop("retry", None)
    return AsyncClusterClient(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in nodes],
        retry=AsyncRetry(NoBackoff(), 0), **merged)


def node_clients(client: redis.cluster.RedisCluster) -> list[tuple[str, redis.Redis]]:
    """(``host:port``, client) of every primary node, for commands that each node answers for itself
    (INFO, CONFIG, SCAN, keyspace events)."""
    return [(node.name, client.get_redis_connection(node)) for node in client.get_primaries()]
