"""Making redis-py clients from broker URLs, and turning connection failures into BrokerUnavailable.

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS (options such as
``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem`` in the query string), and
``unix://[[user]:password@]/path/to/redis.sock[?db=N]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from delayed_core.errors import BrokerUnavailable, ConfigError
from delayed_core.redact import redact

#: Socket read timeout. Longer than any BLPOP a worker sends, short enough to notice a dead server.
SOCKET_TIMEOUT = 30.0

#: Errors that mean "Redis is not reachable right now", as opposed to a bug in a command.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.BusyLoadingError,
               # An ACL that forbids a command is an operator's fix away, like a wrong password: report
               # it in one line and keep retrying rather than crash.
               redis.exceptions.NoPermissionError)


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
    try:
        return redis.Redis.from_url(url, **_options())
    except ValueError as exc:
        raise ConfigError(redact(f"invalid broker URL {url!r}: {exc}")) from None


def async_client_from_url(url: str) -> redis.asyncio.Redis:
    """An asyncio redis-py client for ``url``."""
    try:
        return redis.asyncio.Redis.from_url(url, **_options())
    except ValueError as exc:
        raise ConfigError(redact(f"invalid broker URL {url!r}: {exc}")) from None


def describe(exc: BaseException) -> str:
    """One line for logs: redis-py's messages can span lines."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text)


@contextlib.contextmanager
def unavailable_as_broker_error() -> Iterator[None]:
    """Re-raise connection-level redis errors as BrokerUnavailable."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise BrokerUnavailable(describe(exc)) from exc
