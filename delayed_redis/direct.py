"""DirectCaller: hot-path commands on a connection owned by the calling thread.

redis-py's ``execute_command`` checks a connection out of the pool and back in on every call, and
redis-py 8 records observability data around both; together that costs more client CPU than the command
itself on loopback. The hot paths (enqueue, BLPOP, the release/take scripts) run thousands of times a
second from a few long-lived threads, so each thread keeps one connection for itself instead.

The connection is built from the pool's own class and settings (TLS, auth, db, timeouts) but is not
tracked by the pool: when its thread ends, the thread-local is collected and the socket closed.

When redis-py packs commands with hiredis (its default when hiredis is installed, a dependency here),
the caller packs them with the same ``hiredis.pack_command`` itself: redis-py's packer wraps that call in
a per-argument generator that costs a worker about a tenth of its Python calls per task. Arguments
hiredis does not take (a ``bytearray``, a ``memoryview``) go through redis-py's packer as before.
"""

from __future__ import annotations

import threading
from typing import Any

import hiredis
import redis
from redis.connection import HiredisRespSerializer

#: packed commands :meth:`DirectCaller.repeated` keeps before it starts again from none
REPEATED_KEPT = 256


class DirectCaller:
    """Callable like ``client.execute_command(*args)``, returning the raw reply."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self._local = threading.local()
        self._packed: dict[tuple[Any, ...], bytes] = {}
        # Whether redis-py packs with hiredis here: known at the first connection (the same for every thread).
        self._packs = False

    def _connect(self) -> redis.connection.AbstractConnection:
        connection = self._connection_class(**self._connection_kwargs)
        # Connect explicitly: a command sent on an unconnected socket connects through a path that
        # skips ``connect()``, and a Sentinel-managed connection only asks the sentinels for the
        # master's address in ``connect()`` (it would otherwise dial its default, localhost:6379).
        connection.connect()
        self._local.connection = connection
        # Pack here only where redis-py would pack with hiredis itself: the bytes sent stay the same.
        self._packs = type(getattr(connection, "_command_packer", None)) is HiredisRespSerializer
        return connection

    def __call__(self, *args: Any) -> Any:
        return self._send(args, None)

    def repeated(self, *args: Any) -> Any:
        """The same call, for a command sent again and again with the same arguments: a slot's
        release-and-take has the same keys, slot id and flag for a whole minute, so its bytes are packed
        once (hiredis formats each argument with sprintf: a tenth of a worker's instructions per task)."""
        packed = self._packed.get(args)
        if packed is None and self._packs:
            try:
                packed = hiredis.pack_command(args)
            except TypeError:
                return self._send(args, None)
            if len(self._packed) >= REPEATED_KEPT:  # bounded; minutes and slot ids come and go
                self._packed.clear()
            self._packed[args] = packed
        return self._send(args, packed)

    def packed(self, command: bytes) -> Any:
        """Send ``command``, already packed as RESP (see :mod:`~delayed_redis.resp`), and read its reply."""
        return self._read(self._write((), command))

    def _send(self, args: tuple[Any, ...], packed: bytes | None) -> Any:
        return self._read(self._write(args, packed))

    def _write(self, args: tuple[Any, ...], packed: bytes | None) -> redis.connection.AbstractConnection:
        """Send one command (``packed`` already, or packed here) on the calling thread's connection."""
        local = self._local
        try:
            connection = local.connection
        except AttributeError:  # this thread's first command
            connection = None
        if connection is None:
            connection = self._connect()
        try:
            if packed is None and self._packs:
                try:
                    packed = hiredis.pack_command(args)
                except TypeError:  # an argument type only redis-py converts (or refuses with its DataError)
                    packed = None
            if packed is None:
                connection.send_command(*args)
            else:
                connection.send_packed_command((packed,))
        except BaseException:
            self._drop(connection)  # bytes may have gone out half
            raise
        return connection

    def _read(self, connection: redis.connection.AbstractConnection) -> Any:
        """The reply of the command sent last on ``connection`` (an error reply raises)."""
        try:
            return connection.read_response()
        except redis.exceptions.ResponseError:
            raise  # an error reply: the connection is still in a clean state
        except BaseException:
            self._drop(connection)  # a timeout or a broken socket: unread bytes may follow
            raise

    def _drop(self, connection: redis.connection.AbstractConnection) -> None:
        # Start afresh next time, with a new connection, so that a Sentinel-managed one looks the master
        # up again (after a failover the old object would redial the old master's address).
        connection.disconnect()
        self._local.connection = None
        self._local.client_id = None

    def client_id(self) -> int | None:
        """Redis's id for the calling thread's connection (``CLIENT ID``, asked once per connection), so
        another connection can ``CLIENT UNBLOCK`` a BLPOP waiting on it. None when the server refuses
        (an ACL without ``client|id``)."""
        client_id = getattr(self._local, "client_id", None)
        if client_id is None:
            try:
                client_id = self._local.client_id = int(self("CLIENT", "ID"))
            except redis.exceptions.ResponseError:
                return None
        return client_id

    def close(self) -> None:
        """Close the calling thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._drop(connection)
