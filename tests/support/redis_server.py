"""Start and control a private redis-server on a free port, for tests that need the real thing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from .server_process import start_server_process


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str | None:
    """Path of redis-server, or None when it is not installed."""
    return shutil.which("redis-server")


class RedisServer:
    """A redis-server process the tests own: start, stop, kill, restart on the same port and data dir.

    :param extra_args: more ``redis-server`` arguments (``--requirepass x``, TLS options ...).
    """

    def __init__(self, extra_args: list[str] | None = None, appendonly: bool = False) -> None:
        self.port = free_port()
        self.host = "127.0.0.1"
        self.dir = Path(tempfile.mkdtemp(prefix="delayed-redis-"))
        self.extra_args = list(extra_args or [])
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self.password: str | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        """The redis-server command line."""
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        return [
            binary, "--port", str(self.port), "--bind", self.host, "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"), *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start and wait until it answers PING."""
        # Tied to this process: a killed pytest leaves no server behind (see server_process).
        self.process = start_server_process(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING in time")

    def ping(self) -> bool:
        """True when the server answers (a password-protected one answers NOAUTH, which counts)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
            return reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR"))
        except OSError:
            return False

    def client(self, **kwargs: object) -> redis.Redis:
        """A plain redis-py client for assertions."""
        return redis.Redis(host=self.host, port=self.port, password=self.password, **kwargs)

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL the server (data not fsynced is lost, like a crash)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data directory."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and remove the data directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_server(servers: list[RedisServer], *args: str) -> RedisServer:
    """Start a dedicated redis-server with ``args`` and add it to ``servers`` (the fixture cleans up)."""
    server = RedisServer(list(args)).start()
    servers.append(server)
    return server


def require_redis_server() -> None:
    """Skip the calling test when redis-server is missing, except in CI, where that is a failure."""
    import pytest

    if redis_server_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (the real-Redis tests must run there)")
        pytest.skip("redis-server is not installed")
