"""Redis Sentinel broker URLs: a client that always talks to the current master of a service.

``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``, and
``rediss+sentinel://`` for TLS (to the sentinels and the data nodes alike). The password is the data
nodes'; sentinels that need one of their own get it from the ``sentinel_password`` query parameter
(and ``sentinel_username`` for an ACL user). Other query parameters are the usual redis-py connection
options (``ssl_ca_certs``, ``ssl_cert_reqs`` ...). A sentinel without a port listens on 26379.

How a failover is followed: every connection, the per-thread hot-path ones of
:class:`~delayed_redis.direct.DirectCaller` included (they are built from the pool's class and
arguments), is a ``SentinelManagedConnection`` that asks the sentinels for the master's address each
time it connects. A connection to a dead master fails with a connection error, is dropped, and the next
call reconnects to whoever the sentinels name; one to a demoted master gets READONLY, which redis-py
turns into a connection error too. The callers' usual reconnect-with-backoff does the rest. While the
sentinels name no master (during the election, or for a wrong service name) connecting fails with
``MasterNotFoundError``, a connection error: one log line per retry, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio.sentinel
import redis.sentinel

from delayed_core.errors import ConfigError

SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
#: socket options for the sentinels: short, as they answer one small query per (re)connection
SENTINEL_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0, "socket_keepalive": True}


@dataclass
class SentinelURL:
    """A parsed sentinel URL."""

    sentinels: list[tuple[str, int]]
    service: str
    node_options: dict[str, Any]
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    """True for ``redis+sentinel://`` and ``rediss+sentinel://`` URLs."""
    return url.split("://", 1)[0].lower() in SCHEMES


def host_port(text: str, default_port: int = DEFAULT_SENTINEL_PORT) -> tuple[str, int]:
    """``host[:port]`` or ``[ipv6][:port]`` as (host, port); ValueError when malformed."""
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"empty host in {text!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    return host, port


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a sentinel URL into the sentinels, the service name and the connection options.

    The data nodes' options are parsed by redis-py itself (the URL rewritten as a plain ``redis://``
    one), so that TLS and timeout parameters mean exactly what they mean in a ``redis://`` URL.
    """
    parts = urlsplit(url)
    tls = parts.scheme.lower() == "rediss+sentinel"
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = [host_port(item.strip()) for item in hosts.split(",") if item.strip()]
    if not sentinels:
        raise ValueError("no sentinel host:port")
    path = [unquote(piece) for piece in parts.path.split("/") if piece]
    if not path or len(path) > 2:
        raise ValueError("the path must be /service_name or /service_name/db")
    query = parse_qsl(parts.query, keep_blank_values=True)
    sentinel_auth = {key: value for key, value in query if key in ("sentinel_password", "sentinel_username")}
    rest = urlencode([(key, value) for key, value in query if key not in sentinel_auth])
    plain = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}sentinel-node"
    plain += f"/{path[1] if len(path) == 2 else 0}" + (f"?{rest}" if rest else "")
    node_options = redis.connection.parse_url(plain)
    for key in ("host", "port", "connection_class"):
        node_options.pop(key, None)  # the sentinel pool picks its own (TLS or not) connection class
    if tls:
        node_options["ssl"] = True
    sentinel_options: dict[str, Any] = {}
    if "sentinel_password" in sentinel_auth:
        sentinel_options["password"] = sentinel_auth["sentinel_password"]
    if "sentinel_username" in sentinel_auth:
        sentinel_options["username"] = sentinel_auth["sentinel_username"]
    if tls:
        sentinel_options.update({k: v for k, v in node_options.items() if k.startswith("ssl")})
    return SentinelURL(sentinels, path[0], node_options, sentinel_options)


def _where(sentinel: Any) -> str:
    kwargs = sentinel.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def _unreachable(sentinel: Any, exc: BaseException) -> str:
    return f"{_where(sentinel)} unreachable ({' '.join(str(exc).split()) or type(exc).__name__})"


def _refusal(manager: Any, sentinel: Any, masters: dict[str, Any], service: str) -> str | None:
    """Why this sentinel names no master for ``service``, or None when it names a healthy one."""
    state = masters.get(service)
    if state is None:
        return f"{_where(sentinel)} does not monitor it"
    if not manager.check_master_state(state, service):
        return f"{_where(sentinel)} sees it down (a failover may be under way)"
    return None


def _not_found(service: str, reasons: list[str]) -> str:
    return f"No master found for {service!r}: {'; '.join(reasons)}"


class Sentinel(redis.sentinel.Sentinel):
    """redis-py's Sentinel manager, with a readable "no master" error: one short reason per sentinel
    instead of the repr of every client (which runs to hundreds of characters per sentinel)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        """The master's (host, port) as the first sentinel that knows a healthy one names it."""
        reasons = []
        for number, sentinel in enumerate(self.sentinels):
            try:
                masters = sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                reasons.append(_unreachable(sentinel, exc))
                continue
            reason = _refusal(self, sentinel, masters, service_name)
            if reason is None:
                # Ask this sentinel first next time, as redis-py does.
                self.sentinels[0], self.sentinels[number] = sentinel, self.sentinels[0]
                return masters[service_name]["ip"], masters[service_name]["port"]
            reasons.append(reason)
        raise redis.sentinel.MasterNotFoundError(_not_found(service_name, reasons))


class AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    """The asyncio counterpart of :class:`Sentinel`, with the same one-line "no master" error."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        """The master's (host, port) as the first sentinel that knows a healthy one names it."""
        reasons = []
        for number, sentinel in enumerate(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                reasons.append(_unreachable(sentinel, exc))
                continue
            reason = _refusal(self, sentinel, masters, service_name)
            if reason is None:
                self.sentinels[0], self.sentinels[number] = sentinel, self.sentinels[0]
                return masters[service_name]["ip"], masters[service_name]["port"]
            reasons.append(reason)
        # redis.asyncio has a class of its own (its slave rotation catches that one).
        raise redis.asyncio.sentinel.MasterNotFoundError(_not_found(service_name, reasons))


def _parsed(url: str) -> SentinelURL:
    try:
        return parse_sentinel_url(url)
    except ValueError as exc:
        # No URL in the message: it may hold passwords.
        raise ConfigError(f"invalid sentinel broker URL: {exc}") from None


def sentinel_client(url: str, options: dict[str, Any]) -> redis.Redis:
    """A client of the service's current master, with the project's connection ``options`` (the URL's
    own query options win, as with ``redis://`` URLs)."""
    parsed = _parsed(url)
    manager = Sentinel(parsed.sentinels,
                        sentinel_kwargs={**SENTINEL_TIMEOUTS, **parsed.sentinel_options})
    return manager.master_for(parsed.service, **{**options, **parsed.node_options})


def async_sentinel_client(url: str, options: dict[str, Any]) -> redis.asyncio.Redis:
    """The asyncio counterpart of :func:`sentinel_client`."""
    parsed = _parsed(url)
    manager = AsyncSentinel(parsed.sentinels, sentinel_kwargs={**SENTINEL_TIMEOUTS, **parsed.sentinel_options})
    return manager.master_for(parsed.service, **{**options, **parsed.node_options})
