"""Making redis-py clients from broker URLs, and turning redis-py errors into pydelayed errors.

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS (options such as
``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem`` in the query string), and
``unix://[[user]:password@]/path/to/redis.sock[?db=N]``, and Sentinel's
``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]`` (see sentinel.py), and
Redis Cluster's ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (see cluster.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from delayed_core.errors import ConfigError
from delayed_core.redact import redact

from .cluster import async_cluster_client, cluster_client, is_cluster_url
from .errors import UNAVAILABLE, describe, translate
from .sentinel import async_sentinel_client, is_sentinel_url, sentinel_client

__all__ = [
    "UNAVAILABLE",
    "async_client_from_url",
    "client_from_url",
    "describe",
    "longest_block",
    "translate",
    "unavailable_as_broker_error",
]

#: Socket read timeout: long enough for any BLPOP a worker sends (see :func:`longest_block`), short
#: enough to notice a dead server.
SOCKET_TIMEOUT = 30.0


def _options() -> dict[str, object]:
    # No health-check PINGs: they would add a round trip to hot paths; socket keepalive and the read
    # timeout detect dead connections instead.
    # No automatic retries: re-sending a script whose reply was lost could run it twice (enqueue a task
    # twice, or release a task taken by the lost call). Callers decide what a retry means.
    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
    }


def client_from_url(url: str) -> redis.Redis:
    """A redis-py client (with its own connection pool) for ``url``."""
    if is_sentinel_url(url):
        return sentinel_client(url, _options())
    if is_cluster_url(url):
        # Not a redis.Redis, but it answers the same commands (routing each to its slot's node).
        return cluster_client(url, _options())  # type: ignore[return-value]
    try:
        return redis.Redis.from_url(url, **_options())
    except ValueError as exc:
        raise ConfigError(redact(f"invalid broker URL {url!r}: {exc}")) from None


def async_client_from_url(url: str) -> redis.asyncio.Redis:
    """An asyncio redis-py client for ``url``."""
    if is_sentinel_url(url):
        return async_sentinel_client(url, _options())
    if is_cluster_url(url):
        return async_cluster_client(url, _options())  # type: ignore[return-value]
    try:
        return redis.asyncio.Redis.from_url(url, **_options())
    except ValueError as exc:
        raise ConfigError(redact(f"invalid broker URL {url!r}: {exc}")) from None


def is_cluster_client(client: object) -> bool:
    """True for a Redis Cluster client (sync or asyncio)."""
    return isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def longest_block() -> float:
    """The longest a blocking command may wait server-side: well inside the socket timeout, so that a
    long ``dequeue_timeout`` never reads as a dead server. A slot blocking longer just blocks again."""
    return SOCKET_TIMEOUT * 5 / 6


@contextlib.contextmanager
def unavailable_as_broker_error() -> Iterator[None]:
    """Re-raise redis-py errors as pydelayed errors (see :func:`delayed_redis.errors.translate`)."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise translate(exc) from exc
    except redis.exceptions.RedisClusterException as exc:  # from a pipeline of a cluster client
        raise translate(redis.exceptions.ConnectionError(describe(exc))) from exc
