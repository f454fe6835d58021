"""The table behind the ACL check of ``delayed doctor``: every command pydelayed sends, on the key or channel
it sends it to, in each key layout (doctor_acl.py asks ``ACL DRYRUN`` about each).

It includes the commands the Lua scripts run: a script runs with the caller's rights, and a command it
may not run fails the script halfway (the scripts' key type checks, ``LLEN``/``HLEN``/``ZCARD`` through
``wrong_type``, included). ``tests/test_doctor.py`` fails when a script calls a command missing here.

A placeholder ``{name}`` stands for a key or channel of the checked queue, named by :func:`names` for the
queue's layout: go-delayed's keeps worker liveness keys in the root keyspace and records, rate limits and
periodic schedules under shared prefixes; the cluster layout keeps all of them under the queue's hash
tag, ``{N}_alive:<id>``, ``{N}_task:<id>``, ``{N}_delayed:rate:...``, ``{N}_periodic...`` (keys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import CLUSTER, GO_DELAYED, QueueKeys, cancel_channel

#: a worker id for the checks: the 32 hex chars of ours and go-delayed's
SAMPLE_ID = "0" * 32
#: a task function for the rate-limit and periodic keys
SAMPLE_FUNCTION = "m:f"


@dataclass(frozen=True)
class Use:
    """One command as pydelayed sends it: arguments with ``{key}`` placeholders, what for, and whether
    pydelayed fails without it (else it degrades, with a warning)."""

    argv: tuple[str, ...]
    purpose: str
    required: bool = True
    #: the key layout it is sent in (None: both)
    layout: str | None = None
    #: sent only through a Redis Cluster client (``redis+cluster://`` URLs), whatever the layout
    cluster_client: bool = False
    #: what happens without it, when that is not simply "pydelayed fails" or "works, degraded"
    without: str = ""
    #: a command whose right makes this one required: a waiter that may subscribe but whose announcement
    #: may not be published sleeps until its timeout
    needed_with: str = ""


def names(keys: QueueKeys) -> dict[str, str]:
    """The placeholders of :data:`USES` for one queue, in its layout."""
    rate = keys.rate(f"delayed:rate:{SAMPLE_FUNCTION}")
    return {"queue": keys.queue, "notifications": keys.notifications, "processing": keys.processing,
            "dead": keys.dead, "recoveries": keys.recoveries, "scheduled": keys.scheduled,
            "workers": keys.workers, "poison": keys.poison, "worker_info": keys.worker_info,
            "throughput": keys.throughput, "bound": keys.bound, "alive": keys.liveness(SAMPLE_ID),
            "record": keys.record(SAMPLE_ID), "cancel": cancel_channel(keys.queue), "rate": rate,
            "rate_reserved": f"{rate}:reserved", "periodic": keys.periodic,
            "periodic_record": keys.periodic_record(SAMPLE_FUNCTION)}


def argv_for(use: Use, keys: QueueKeys) -> list[str]:
    """The command line of ``use`` on the keys of one queue."""
    table = names(keys)
    return [part.format(**table) if part.startswith("{") else part for part in use.argv]


def placeholder(use: Use) -> str | None:
    """The name of the key or channel ``use`` is sent to (``"record"``), or None for a command without one."""
    first = use.argv[1] if len(use.argv) > 1 else ""
    return first[1:-1] if first.startswith("{") and first.endswith("}") else None


#: the wait of an idle worker of the cluster layout: one BLPOP per queue, each on a connection whose id
#: another thread may end it with (cluster_wait.py, cluster_unblock.py)
_CLUSTER_WAIT = "idle workers waiting for tasks (the id of each BLPOP's connection)"
_CLUSTER_UNBLOCK = ("a worker of several queues ending its other BLPOPs when one gives a task, prompt stop of "
                    "idle workers")

USES: tuple[Use, ...] = (
    Use(("EVALSHA", "0" * 40, "2", "{queue}", "{notifications}"), "every script call"),
    Use(("SCRIPT", "LOAD", "return 1"), "loading the scripts after a Redis restart"),
    Use(("MULTI",), "enqueueing a batch"),
    Use(("EXEC",), "enqueueing a batch"),
    Use(("RPUSH", "{queue}", "t"), "enqueue, requeue, sweep"),
    Use(("RPUSH", "{notifications}", "1"), "enqueue, requeue"),
    Use(("LPUSH", "{queue}", "t"), "handing a task back at shutdown"),
    Use(("LPUSH", "{notifications}", "1"), "sweep"),
    Use(("LPOP", "{queue}"), "dequeue"),
    Use(("LPOP", "{notifications}"), "release-and-take"),
    Use(("BLPOP", "{notifications}", "1"), "idle workers waiting for tasks"),
    Use(("LLEN", "{queue}"), "queue length, sweep"),
    Use(("LLEN", "{notifications}"), "sweep"),
    Use(("LTRIM", "{notifications}", "0", "0"), "sweep: surplus notifications"),
    Use(("DEL", "{notifications}"), "sweep"),
    Use(("HSET", "{processing}", SAMPLE_ID, "t"), "dequeue"),
    Use(("HGET", "{processing}", SAMPLE_ID), "dequeue, resuming after a lost reply"),
    Use(("HDEL", "{processing}", SAMPLE_ID), "release"),
    Use(("HGETALL", "{processing}"), "sweep, info"),
    Use(("HSCAN", "{processing}", "0"), "sweep: the held tasks, in steps"),
    Use(("HLEN", "{processing}"), "scripts: checking the key's type before writing"),
    Use(("HMGET", "{processing}", SAMPLE_ID), "--prefetch: what a slot's ids hold after a lost reply"),
    Use(("LPUSH", "{dead}", "e"), "dead letters"),
    Use(("LTRIM", "{dead}", "0", "0"), "dead letters"),
    Use(("LRANGE", "{dead}", "0", "0"), "delayed dead"),
    Use(("LREM", "{dead}", "1", "e"), "delayed dead requeue"),
    Use(("LLEN", "{dead}"), "info"),
    Use(("HINCRBY", "{recoveries}", "t", "1"), "sweep: poison-task cap"),
    Use(("HDEL", "{recoveries}", "t"), "sweep: poison-task cap"),
    Use(("HLEN", "{recoveries}"), "sweep: checking the key's type before writing"),
    Use(("EXPIRE", "{recoveries}", "60"), "sweep: poison-task cap"),
    Use(("RPUSH", "{poison}", "t"), "sweep: setting a poison task aside"),
    Use(("LRANGE", "{poison}", "0", "0"), "sweep: poison tasks waiting for their dead letter"),
    Use(("LREM", "{poison}", "1", "t"), "sweep: burying a poison task"),
    Use(("LLEN", "{poison}"), "sweep: checking the key's type before writing"),
    Use(("ZADD", "{scheduled}", "1", "t"), "scheduled tasks"),
    Use(("ZRANGEBYSCORE", "{scheduled}", "0", "1"), "promoting due tasks"),
    Use(("ZRANGE", "{scheduled}", "0", "0"), "promoting due tasks"),
    Use(("ZREM", "{scheduled}", "t"), "promoting due tasks"),
    Use(("ZREMRANGEBYRANK", "{scheduled}", "0", "0"), "promoting due tasks in bounded calls"),
    Use(("ZCARD", "{scheduled}"), "info, scripts: checking the key's type before writing"),
    Use(("ZADD", "{workers}", "1", SAMPLE_ID), "worker registry"),
    Use(("ZREM", "{workers}", SAMPLE_ID), "worker registry"),
    Use(("ZRANGE", "{workers}", "0", "-1"), "info"),
    Use(("ZREMRANGEBYSCORE", "{workers}", "0", "1"), "sweep: worker registry"),
    Use(("ZCARD", "{workers}"), "scripts: checking the key's type before writing"),
    Use(("SET", "{alive}", "1", "NX", "PX", "1000"), "claiming a worker id"),
    Use(("PEXPIRE", "{alive}", "1000"), "keep-alive"),
    Use(("GET", "{alive}"), "sweep: is the worker alive"),
    Use(("EXISTS", "{alive}"), "info: is the worker alive"),
    Use(("DEL", "{alive}"), "going offline"),
    Use(("TIME",), "due times on the server clock"),
    Use(("PUBLISH", "{scheduled}", "1"), "announcing scheduled tasks", required=False),
    Use(("SUBSCRIBE", "{scheduled}"), "idle workers sleeping until a task falls due", required=False),
    Use(("CLIENT", "ID"), "prompt stop of idle workers", required=False, layout=GO_DELAYED),
    Use(("CLIENT", "UNBLOCK", "1"), "prompt stop of idle workers", required=False, layout=GO_DELAYED),
    Use(("CLIENT", "ID"), _CLUSTER_WAIT, layout=CLUSTER, without="workers take no task"),
    Use(("CLIENT", "UNBLOCK", "1"), _CLUSTER_UNBLOCK, layout=CLUSTER,
        without="a worker of several queues waits 2 s before each task it takes when idle"),
    Use(("SCAN", "0"), "info and doctor without --queue", required=False),
    # redis-py's cluster client, at its start and after a slot moved (redis+cluster:// URLs only)
    Use(("CLUSTER", "SLOTS"), "redis+cluster:// URLs: the cluster's slot map", cluster_client=True),
    Use(("COMMAND",), "redis+cluster:// URLs: which arguments of each command are keys", cluster_client=True),
    # The dashboard's data: best effort on the worker side (a refused counter or announcement never fails
    # a task), read by `delayed dashboard`.
    Use(("HINCRBY", "{throughput}", "d:1", "1"), "per-minute counters for the dashboard", required=False),
    Use(("HKEYS", "{throughput}"), "per-minute counters: dropping old minutes", required=False),
    Use(("HDEL", "{throughput}", "d:1"), "per-minute counters: dropping old minutes", required=False),
    Use(("PEXPIRE", "{throughput}", "1000"), "per-minute counters: expiry", required=False),
    Use(("HGETALL", "{throughput}"), "delayed dashboard: the chart", required=False),
    Use(("HSET", "{worker_info}", SAMPLE_ID, "d"), "worker details for the dashboard", required=False),
    Use(("HKEYS", "{worker_info}"), "worker details: forgetting gone workers", required=False),
    Use(("HDEL", "{worker_info}", SAMPLE_ID), "worker details: forgetting gone workers", required=False),
    Use(("HLEN", "{worker_info}"), "worker details: checking the key's type", required=False),
    Use(("ZSCORE", "{workers}", SAMPLE_ID), "worker details: forgetting gone workers", required=False),
    Use(("HGETALL", "{worker_info}"), "delayed dashboard: workers page", required=False),
    # Task records (handles): every tracked enqueue, settle, read and cancel; on by default for @app.task
    # functions (result_ttl > 0). Their channels are optional: waiters then poll.
    Use(("HSET", "{record}", "s", "queued"), "tracked tasks: a scheduled, retried or named task's record"),
    Use(("HGET", "{record}", "s"), "tracked tasks: settling the record (its enqueue time), cancel"),
    Use(("HGETALL", "{record}"), "tracked tasks: status and result"),
    Use(("HDEL", "{record}", "t"), "tracked tasks: cancelling a queued task"),
    Use(("DEL", "{record}"), "tracked tasks: a retry's record (written anew), a new run of a caller's id"),
    Use(("PEXPIRE", "{record}", "1000"), "tracked tasks: result_ttl"),
    Use(("HMGET", "{record}", "q"), "tracked tasks: a retry's record (written anew), unique ids"),
    Use(("SET", "{record}", "v", "PX", "1000"), "tracked tasks: writing the record (one string), settling it"),
    Use(("GET", "{record}"), "tracked tasks: a record's status and result"),
    Use(("LREM", "{queue}", "1", "t"), "cancelling a queued task"),
    Use(("PUBLISH", "{record}", "done"), "waking result() waiters", required=False, layout=GO_DELAYED,
        needed_with="SUBSCRIBE"),
    Use(("SUBSCRIBE", "{record}"), "result() waiting without polling", required=False, layout=GO_DELAYED),
    Use(("UNSUBSCRIBE", "{record}"), "result() waiting without polling: a thread's later waits",
        required=False, layout=GO_DELAYED),
    Use(("SPUBLISH", "{record}", "done"), "waking result() waiters", required=False, layout=CLUSTER,
        needed_with="SSUBSCRIBE"),
    Use(("SSUBSCRIBE", "{record}"), "result() waiting without polling", required=False, layout=CLUSTER),
    Use(("SUNSUBSCRIBE", "{record}"), "result() waiting without polling: a thread's later waits",
        required=False, layout=CLUSTER),
    Use(("PUBLISH", "{cancel}", "w t"), "cancelling a running task", required=False),
    Use(("SUBSCRIBE", "{cancel}"), "workers hearing cancelled running tasks", required=False),
    # Rate limits and periodic tasks: go-delayed's layout keeps them under keys every queue shares
    # (``~delayed:*``), the cluster layout in the queue's slot; needed only by apps that use them.
    Use(("SET", "{bound}", "1"), "bounded queues: recording the bound for delayed info"),
    Use(("GET", "{bound}"), "bounded queues, info"),
    Use(("SET", "{rate}", "1", "PX", "1000"), "rate limits: the next free start", required=False),
    Use(("GET", "{rate}"), "rate limits", required=False),
    Use(("HINCRBY", "{rate_reserved}", "d", "1"), "rate limits: reserved starts", required=False),
    Use(("HGET", "{rate_reserved}", "d"), "rate limits: reserved starts", required=False),
    Use(("HDEL", "{rate_reserved}", "d"), "rate limits: reserved starts", required=False),
    Use(("HLEN", "{rate_reserved}"), "rate limits: checking the key's type", required=False),
    Use(("PEXPIRE", "{rate_reserved}", "1000"), "rate limits: reserved starts", required=False),
    Use(("SADD", "{periodic}", SAMPLE_FUNCTION), "periodic tasks: the list of schedules", required=False),
    Use(("SMEMBERS", "{periodic}"), "delayed periodic list", required=False),
    Use(("HSETNX", "{periodic_record}", "last_tick", "1"), "periodic tasks: a new schedule", required=False),
    Use(("HSET", "{periodic_record}", "f", "v"), "periodic tasks: claiming a tick", required=False),
    Use(("HGET", "{periodic_record}", "last_tick"), "periodic tasks: claiming a tick", required=False),
    Use(("HINCRBY", "{periodic_record}", "enqueued", "1"), "periodic tasks: claiming a tick", required=False),
    Use(("HGETALL", "{periodic_record}"), "delayed periodic list", required=False),
)


def uses_for(layout: str, cluster_client: bool) -> list[Use]:
    """The uses checked for one layout, with or without a Redis Cluster client."""
    return [use for use in USES if use.layout in (None, layout) and (cluster_client or not use.cluster_client)]


def commands_listed(key: str | None = None) -> set[str]:
    """Lower-case names of the commands in :data:`USES`, or of those sent to the ``{key}`` placeholder
    (the tests compare them with the scripts)."""
    return {use.argv[0].lower() for use in USES if key is None or placeholder(use) == key}
