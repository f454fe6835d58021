"""Test support for the Redis broker: cut a worker's connections, for the crash-point harness.

:func:`cut_connections` is what ``delayed_core.testing.crashpoint_plugin`` calls in its ``disconnect``
mode. It models a network blip seen by one process: every TCP connection this process has to the
broker's Redis server is closed by the server (``CLIENT KILL ADDR``), so the next command on each fails
the way a dropped connection does. Other processes' connections to the same server are untouched.
"""

from __future__ import annotations

import contextlib
import os
import socket

import redis

from .broker import RedisBroker


def _own_peers(host: str, port: int) -> list[str]:
    """``ip:port`` (the local end, as Redis's ``CLIENT LIST`` shows it) of every TCP socket this process
    has open to ``host:port``. Found by walking the process's file descriptors (Linux ``/proc``, else
    ``/dev/fd``)."""
    targets = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found = []
    for name in os.listdir(fd_dir):
        try:
            dup = os.dup(int(name))
        except OSError:
            continue  # closed meanwhile, or the directory's own descriptor
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue  # not a socket
        with sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            with contextlib.suppress(OSError):
                peer, local = sock.getpeername(), sock.getsockname()
                if peer[1] == port and peer[0] in targets:
                    address = f"[{local[0]}]:{local[1]}" if sock.family == socket.AF_INET6 else f"{local[0]}:{local[1]}"
                    found.append(address)
    return found


def cut_connections(broker: RedisBroker) -> int:
    """Have the server close every connection this process holds to ``broker``'s Redis; return how many.

    The kill goes through a fresh connection of its own, opened after the others were listed.
    """
    pool = broker.client.connection_pool
    host, port = str(pool.connection_kwargs.get("host", "localhost")), int(pool.connection_kwargs.get("port", 6379))
    addresses = _own_peers(host, port)
    # Built like the pool's own connections (auth, TLS, timeouts), but outside the pool.
    killer = pool.connection_class(**pool.connection_kwargs)
    killed = 0
    try:
        for address in addresses:
            killer.send_command("CLIENT", "KILL", "ADDR", address, "SKIPME", "yes")
            with contextlib.suppress(redis.exceptions.ResponseError):  # that connection closed meanwhile
                killed += int(killer.read_response())
    finally:
        killer.disconnect()
    return killed
