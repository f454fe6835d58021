"""``delayed doctor`` for Redis: the server's settings that decide whether tasks survive, the ACL, the queues.

Server checks: the Redis version; ``maxmemory-policy`` (anything but ``noeviction`` lets Redis drop keys,
tasks included, without a word: an error); persistence (neither AOF nor RDB: a warning); whether
``notify-keyspace-events`` has ``Ex`` (expiry events, which let a sweeper react to a dead worker at once);
the ACL rights of the user (delayed_redis/doctor_acl.py). Queue checks: delayed_redis/doctor_queues.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import redis

from delayed_core.doctor import DoctorRequest, Finding, Severity

from .broker import RedisBroker
from .connection import is_cluster_client, unavailable_as_broker_error
from .doctor_acl import check_acl
from .doctor_cluster import layout_finding, per_node, plain_url_on_cluster_node
from .doctor_queues import check_queue
from .expiry_events import expired_events_on, with_expired_events

if TYPE_CHECKING:
    from delayed_core.app import Delayed

ADMIN_FIX = "run `delayed doctor` with a broker URL of a user allowed CONFIG GET (an admin)"


def server_version(client: redis.Redis) -> tuple[tuple[int, ...], str]:
    """The Redis version as a tuple and as text (``(0,), "unknown"`` when INFO is not allowed)."""
    try:
        text = str(client.info("server").get("redis_version", ""))
    except redis.exceptions.NoPermissionError:
        return (0,), "unknown"
    numbers = tuple(int(part) for part in text.split(".") if part.isdigit())
    return numbers or (0,), text or "unknown"


def check_version(version: tuple[int, ...], text: str) -> Finding:
    """The version, for the record (and why the ACL check needs 7)."""
    if text == "unknown":
        return Finding("redis-version", Severity.WARNING, "cannot read the Redis version (INFO is not allowed)",
                       "allow +info, or run doctor as an admin user")
    return Finding("redis-version", Severity.INFO, f"Redis {text}", details={"version": text})


def read_config(client: redis.Redis, *names: str) -> dict[str, str] | None:
    """``CONFIG GET`` of these parameters; None when the user may not read the configuration."""
    try:
        values: dict[str, str] = {}
        for name in names:
            values.update({str(k): str(v) for k, v in client.config_get(name).items()})
        return values
    except redis.exceptions.NoPermissionError:
        return None


def check_config(client: redis.Redis) -> list[Finding]:
    """maxmemory-policy, persistence and keyspace events, or one finding saying they cannot be read."""
    config = read_config(client, "maxmemory-policy", "maxmemory", "appendonly", "save", "notify-keyspace-events")
    if config is None:
        return [Finding("config", Severity.WARNING, "cannot read the server configuration (CONFIG GET is not "
                        "allowed): maxmemory-policy, persistence and keyspace events were not checked", ADMIN_FIX)]
    return [check_eviction(config), check_persistence(config), check_keyspace_events(config)]


def check_eviction(config: dict[str, str]) -> Finding:
    """Eviction deletes keys to make room: a queue, its tasks or a liveness key can vanish silently."""
    policy, limit = config.get("maxmemory-policy", "?"), config.get("maxmemory", "0")
    if policy == "noeviction":
        return Finding("maxmemory-policy", Severity.OK,
                       "noeviction: when memory runs out writes fail loudly, nothing is dropped")
    limit_text = "no maxmemory set yet" if limit == "0" else f"maxmemory {limit} bytes"
    return Finding("maxmemory-policy", Severity.ERROR,
                   f"{policy} ({limit_text}): when memory runs out Redis deletes keys, and queued tasks, held "
                   "tasks or worker liveness keys vanish without a trace",
                   "CONFIG SET maxmemory-policy noeviction, and set it in redis.conf",
                   details={"policy": policy, "maxmemory": limit})


def check_persistence(config: dict[str, str]) -> Finding:
    """Without AOF or RDB a Redis restart empties every queue."""
    aof, save = config.get("appendonly") == "yes", config.get("save", "").strip()
    details = {"appendonly": aof, "save": save}
    if aof:
        return Finding("persistence", Severity.OK, "AOF is on", details=details)
    if save:
        return Finding("persistence", Severity.INFO,
                       f"RDB snapshots only (save {save}): a crash loses the tasks enqueued since the last one",
                       "CONFIG SET appendonly yes for at most a second of loss", details=details)
    return Finding("persistence", Severity.WARNING,
                   "neither AOF nor RDB snapshots: a restart of Redis loses every queued and held task",
                   "CONFIG SET appendonly yes, and set it in redis.conf", details=details)


def check_keyspace_events(config: dict[str, str]) -> Finding:
    """``Ex``: keyevent notifications for expired keys, so a sweeper can react to a worker id expiring."""
    flags = config.get("notify-keyspace-events", "")
    on = expired_events_on(flags)
    details = {"notify-keyspace-events": flags, "expired_events": on}
    if on:
        return Finding("keyspace-events", Severity.INFO, f"expiry events are on ({flags!r})", details=details)
    return Finding("keyspace-events", Severity.INFO,
                   f"expiry events are off ({flags!r}): a dead worker's task waits for the periodic sweep, "
                   "unless a sweeper whose user may run CONFIG SET turns them on when it starts",
                   f"CONFIG SET notify-keyspace-events {with_expired_events(flags)}, and set it in redis.conf "
                   "(optional: lets a sweeper recover a dead worker's task at once)",
                   details=details)


def redis_checks(app: Delayed, request: DoctorRequest) -> list[Finding] | None:
    """The Redis checks, when the app's broker is Redis (the plugin's ``delayed_doctor_checks``)."""
    broker = app.broker(app.config["queue"])
    if not isinstance(broker, RedisBroker):
        return None
    client = broker.client
    keys = broker.keys
    # An unreachable Redis is one line from the CLI (BrokerUnavailable), not a finding per check.
    with unavailable_as_broker_error():
        if is_cluster_client(client):  # every primary's settings and ACL (doctor_cluster.py)
            cluster = cast("redis.cluster.RedisCluster", client)
            findings = [layout_finding(keys, len(cluster.get_primaries())), *per_node(cluster, server_checks)]
            findings += per_node(cluster, lambda node: acl_checks(node, request, keys.layout, cluster_client=True))
        else:
            findings = server_checks(client)
            misplaced = plain_url_on_cluster_node(client)
            if misplaced is not None:  # the queue checks would only meet MOVED: say why, once
                return [*findings, misplaced]
            findings += [layout_finding(keys, None)] if keys.clustered else []
            findings += acl_checks(client, request, keys.layout)
        for queue in request.queues:
            findings += check_queue(app, client, queue, keys.layout)
    return findings


def acl_checks(client: redis.Redis, request: DoctorRequest, layout: str, cluster_client: bool = False
               ) -> list[Finding]:
    """The ACL check of one server (doctor_acl.py), or one finding saying why it could not run."""
    try:
        return check_acl(client, server_version(client)[0], request.queues, request.acl_user, layout,
                         cluster_client)
    except redis.exceptions.ResponseError as exc:
        return [Finding("acl", Severity.WARNING, f"cannot check ACL rights: {exc}")]


def server_checks(client: redis.Redis) -> list[Finding]:
    """The checks of one server: version, eviction, persistence, keyspace events."""
    version, text = server_version(client)
    return [check_version(version, text), *check_config(client)]
