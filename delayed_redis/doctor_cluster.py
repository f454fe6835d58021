"""``delayed doctor`` on the cluster key layout and on Redis Cluster nodes.

A Redis Cluster is several servers: the server checks of doctor.py (version, eviction, persistence,
keyspace events) and the ACL check run on every primary, each finding naming its node: a Redis Cluster
does not copy ``ACL SETUSER`` from node to node, so a user may be missing or different on one. A plain
``redis://`` URL that points at a cluster node is an error finding: most of a queue's commands would be
redirected (MOVED) or refused (CROSSSLOT).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import redis

from delayed_core.doctor import Finding, Severity

from .cluster import node_clients
from .keys import QueueKeys


def layout_finding(keys: QueueKeys, primaries: int | None) -> Finding:
    """Which key layout the app uses, and what that means for other workers."""
    where = f"a Redis Cluster of {primaries} primaries" if primaries else "one Redis"
    return Finding("key-layout", Severity.INFO,
                   f"cluster key layout on {where}: every key of a queue in one hash slot ({{N}}, {{N}}_noti ...); "
                   "Go workers and delayed 1.x cannot read these queues, and task handles are not offered",
                   details={"layout": keys.layout, "primaries": primaries})


def per_node(client: redis.cluster.RedisCluster,
             checks: Callable[[redis.Redis], list[Finding]]) -> list[Finding]:
    """``checks`` run on every primary, each finding's message prefixed with the node's address."""
    findings = []
    for name, node in node_clients(client):
        for finding in checks(node):
            findings.append(dataclasses.replace(finding, message=f"{name}: {finding.message}",
                                                details={**finding.details, "node": name}))
    return findings


def plain_url_on_cluster_node(client: redis.Redis) -> Finding | None:
    """An error finding when a plain client's server is a cluster node; None otherwise (or unknown)."""
    try:
        enabled = str(client.info("cluster").get("cluster_enabled", "0")) == "1"
    except redis.exceptions.ResponseError:
        return None
    if not enabled:
        return None
    return Finding("key-layout", Severity.ERROR,
                   "this Redis is a Redis Cluster node, reached with a plain URL: commands on keys of other "
                   "nodes are redirected (MOVED), and go-delayed's layout spans hash slots (CROSSSLOT)",
                   "use redis+cluster://host:port[,host:port...] (the cluster key layout)")
