"""Building the dashboard's ASGI app and serving it with uvicorn (what ``delayed dashboard`` runs)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from collections.abc import Sequence

import uvicorn

from delayed_core.app import Delayed
from delayed_core.errors import DelayedError
from delayed_core.redact import redact_url

from .reader import Reader
from .security import Guard, SecurityHeaders
from .web import Dashboard


def create_app(app: Delayed, queues: Sequence[str] = (), token: str | None = None, read_only: bool = False,
               broker_label: str | None = None, refresh: float = 2.0) -> SecurityHeaders:
    """The dashboard as an ASGI app (mount it in your own server, or let :func:`serve` run it).

    :param app: the app whose broker to show.
    :param queues: the queues to show (default: every queue the broker can discover).
    :param token: the action token; required unless ``read_only``.
    :param broker_label: the broker as shown on every page (default: the URL, password hidden).
    """
    label = broker_label if broker_label is not None else redact_url(app.config.broker_url)
    return Dashboard(app, Reader(app, queues), Guard(token, read_only), label, refresh).asgi()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, so that a taken port is a one-line error, and port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # OverflowError: a port above 65535
        sock.close()
        raise DelayedError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    sock.listen(128)
    return sock


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(app: Delayed, queues: Sequence[str] = (), host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None, read_only: bool = False) -> None:
    """Check the broker answers, print where the dashboard listens (and a generated token, once), serve
    until interrupted."""
    reader_check = Reader(app, queues)
    reader_check.queue_names()  # fails here, as one line, when the broker cannot be reached
    if not read_only and not token:
        token = secrets.token_urlsafe(24)
        print(f"delayed dashboard: action token (shown once; give it on the sign-in page): {token}",
              file=sys.stderr)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    mode = "read-only" if read_only else "actions need the token"
    print(f"delayed dashboard: serving {redact_url(app.config.broker_url)} at http://{shown}:{bound_port}/ ({mode})",
          file=sys.stderr, flush=True)
    if not is_loopback(host):
        print(f"delayed dashboard: warning: listening on {host}, not only this machine: anyone who can reach it "
              "can read queue contents and task arguments", file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(app, queues, token, read_only), log_level="warning", access_log=False,
                            server_header=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
