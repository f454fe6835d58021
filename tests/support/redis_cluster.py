"""A private Redis Cluster for tests: three masters on free ports, made with ``redis-cli --cluster create``,
plus the operations the cluster tests need (add a master, move one hash slot while clients run, kill a
node). Start it once per module: creating a cluster takes about a second."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .redis_server import RedisServer, free_port, require_redis_server


def redis_cli_binary() -> str | None:
    """Path of redis-cli, or None."""
    return shutil.which("redis-cli")


class ClusterNode(RedisServer):
    """One ``cluster-enabled`` redis-server; its cluster bus on a second free port (not port + 10000,
    which may be taken or past 65535)."""

    def __init__(self) -> None:
        super().__init__(["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                          "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no"])
        self.extra_args += ["--cluster-config-file", str(self.dir / "nodes.conf")]

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def node_id(self) -> str:
        """This node's cluster id."""
        return str(self.client(decode_responses=True).execute_command("CLUSTER", "MYID"))


class LocalCluster:
    """Three (or more) masters, no replicas."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [ClusterNode() for _ in range(masters)]

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL naming every node."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def start(self) -> LocalCluster:
        """Start the nodes and join them into one cluster covering every slot."""
        for node in self.nodes:
            node.start()
        _cli("--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas", "0",
             "--cluster-yes")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Until every live node says ``cluster_state:ok`` and agrees on the slot owners."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                infos = [node.client(decode_responses=True).execute_command("CLUSTER", "INFO")
                         for node in self.live_nodes()]
                shards = {str(node.client().execute_command("CLUSTER", "SLOTS")) for node in self.live_nodes()}
                if all("cluster_state:ok" in info for info in infos) and len(shards) == 1:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the test cluster did not become ok in time")

    def live_nodes(self) -> list[ClusterNode]:
        """The nodes whose process runs."""
        return [node for node in self.nodes if node.process and node.process.poll() is None]

    def owner(self, slot: int) -> ClusterNode:
        """The node serving ``slot``."""
        for node in self.live_nodes():
            for first, last, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"slot {slot} has no owner")

    def add_master(self) -> ClusterNode:
        """Start one more master and join it (it serves no slot yet)."""
        node = ClusterNode()
        node.start()
        self.nodes.append(node)
        _cli("--cluster", "add-node", node.address, self.nodes[0].address)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # every node must know the new one before slots move to it
            known = [str(n.client().execute_command("CLUSTER", "NODES")).count("master") for n in self.nodes]
            if all(count == len(self.nodes) for count in known):
                self.wait_ok()  # the new node too: until it sees the cluster ok it refuses MIGRATE
                return node
            time.sleep(0.05)
        raise RuntimeError("the new node did not join in time")

    def move_slot(self, slot: int, target: ClusterNode, batch: int = 10, pause: float = 0.0) -> int:
        """Move ``slot`` to ``target`` as ``redis-cli --cluster reshard`` does (IMPORTING / MIGRATING, then
        MIGRATE a few keys at a time, then SETSLOT NODE everywhere); clients meanwhile get ASK, then
        MOVED. Returns the number of keys moved."""
        source = self.owner(slot)
        source_id, target_id = source.node_id(), target.node_id()
        target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while True:
            keys = source.client().execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            source.client().execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            if pause:
                time.sleep(pause)
        for node in self.live_nodes():
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def command_counts(self) -> dict[str, dict[str, int]]:
        """Per node address: command name -> calls since the last reset (INFO commandstats)."""
        counts = {}
        for node in self.live_nodes():
            stats = node.client().info("commandstats")
            counts[node.address] = {name.removeprefix("cmdstat_"): int(value["calls"])
                                    for name, value in stats.items()}
        return counts

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT on every node."""
        for node in self.live_nodes():
            node.client().config_resetstat()

    def cleanup(self) -> None:
        """Kill every node and remove their directories."""
        for node in self.nodes:
            node.cleanup()


def _cli(*args: str) -> None:
    binary = redis_cli_binary()
    if binary is None:
        raise RuntimeError("redis-cli is not installed")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args[:2])} failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (hash tags included), as the cluster computes it."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def queues_on_every_node(cluster: LocalCluster, count: int, prefix: str = "q") -> list[str]:
    """``count`` queue names whose slots cover every node of ``cluster`` (round-robin over the nodes)."""
    by_node: dict[int, list[str]] = {node.port: [] for node in cluster.live_nodes()}
    number = 0
    while sum(len(names) for names in by_node.values()) < count * len(by_node):
        name = f"{prefix}{number}"
        number += 1
        port = cluster.owner(slot_of(name)).port
        if len(by_node[port]) < count:
            by_node[port].append(name)
    picked = [name for group in zip(*by_node.values(), strict=True) for name in group]
    return picked[:count]


def cluster_log_tail(cluster: LocalCluster) -> str:
    """The last lines of every node's log, for a failing test's message."""
    return "\n".join(Path(node.dir / "redis.log").read_text(errors="replace")[-500:] for node in cluster.nodes)


def require_cluster_tools() -> None:
    """Skip the calling test without redis-server or redis-cli, except in CI, where that is a failure."""
    require_redis_server()
    if redis_cli_binary() is None:  # Debian's redis-tools, a dependency of redis-server
        if os.environ.get("CI"):
            pytest.fail("redis-cli is required in CI (the Redis Cluster tests must run there)")
        pytest.skip("redis-cli is not installed")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """One three-master cluster for the whole session (a test that changes its shape makes its own)."""
    require_cluster_tools()
    cluster = LocalCluster().start()
    yield cluster
    cluster.cleanup()


def flush(cluster: LocalCluster) -> None:
    """FLUSHALL on every live master, and reset their command counts."""
    for node in cluster.live_nodes():
        node.client().flushall()
        node.client().config_resetstat()
