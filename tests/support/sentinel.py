"""A private Redis Sentinel setup for tests: one master, one replica, three sentinels, all on free ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer, free_port
from tests.support.server_process import start_server_process

SERVICE = "mymaster"


class SentinelSetup:
    """Start with :meth:`start`; ``url`` is the ``redis+sentinel://`` broker URL of the service.

    Sentinels use quorum 2, ``down-after-milliseconds`` 1000 and ``failover-timeout`` 3000, so that a
    killed master is replaced within a few seconds.
    """

    def __init__(self) -> None:
        # A replica syncs at once instead of after Redis's default 5 s wait for more replicas to join
        # (either node may be the master after a failover).
        fast_sync = ["--repl-diskless-sync-delay", "0"]
        self.master = RedisServer(fast_sync)
        self.replica = RedisServer(["--replicaof", "127.0.0.1", str(self.master.port), *fast_sync])
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="delayed-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster/0``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _sentinel_config(self, port: int) -> Path:
        path = self.dir / f"sentinel-{port}.conf"
        path.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"logfile {self.dir}/sentinel-{port}.log\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return path

    def sentinel_client(self, index: int = 0) -> redis.Redis:
        """A plain client of one sentinel."""
        return redis.Redis("127.0.0.1", self.sentinel_ports[index], socket_timeout=2)

    def master_address(self) -> tuple[str, int] | None:
        """The master the first sentinel names, or None."""
        try:
            address = self.sentinel_client().sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return None
        return (address[0], int(address[1])) if address else None

    def start(self, timeout: float = 30.0) -> SentinelSetup:
        """Start every process and wait until the sentinels know each other and the replica."""
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise RuntimeError("redis-sentinel is not installed")
        try:
            self.master.start()
            self.replica.start()
            for port in self.sentinel_ports:
                self.sentinels.append(start_server_process([binary, str(self._sentinel_config(port))],
                                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._ready():
                    return self
                time.sleep(0.1)
            raise RuntimeError("the sentinel setup did not become ready in time")
        except BaseException:
            self.cleanup()  # never leave servers behind when the setup fails
            raise

    def _ready(self) -> bool:
        try:
            if self.replica.client().info("replication").get("master_link_status") != "up":
                return False
            for index in range(3):
                state = self.sentinel_client(index).sentinel_master(SERVICE)
                if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                    return False
        except redis.RedisError:
            return False
        return True

    def wait_for_new_master(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a master other than ``old_port``; return its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for index in range(3):
                try:
                    address = self.sentinel_client(index).sentinel_get_master_addr_by_name(SERVICE)
                except redis.RedisError:
                    address = None
                ports.add(int(address[1]) if address else None)
            if len(ports) == 1 and None not in ports and old_port not in ports:
                return ports.pop()  # type: ignore[return-value]
            time.sleep(0.05)
        raise RuntimeError("no failover within the timeout")

    def cleanup(self) -> None:
        """Stop everything and remove the files."""
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.master.cleanup()
        self.replica.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
