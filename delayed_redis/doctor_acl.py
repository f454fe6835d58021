"""The ACL part of ``delayed doctor``: which commands pydelayed sends, and whether a user may send them.

``ACL DRYRUN`` (Redis >= 7) answers for one user, one command, its keys and channels, without running
anything. The table below lists every command pydelayed sends, on the key (or channel) it sends it to,
including the commands its Lua scripts run: a script runs with the caller's rights, and a command it may
not run fails the script halfway. ``tests/test_doctor.py`` fails when a script calls a command missing here.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from delayed_core.doctor import Finding, Severity

from .keys import CLUSTER, GO_DELAYED, PERIODIC, QueueKeys, cancel_channel, periodic_key

#: a worker id for the checks: the 32 hex chars of ours and go-delayed's
SAMPLE_ID = "0" * 32


@dataclass(frozen=True)
class Use:
    """One command as pydelayed sends it: arguments with ``{key}`` placeholders, what for, and whether
    pydelayed fails without it (else it degrades, with a warning)."""

    argv: tuple[str, ...]
    purpose: str
    required: bool = True
    #: the key layout it is sent in (None: both)
    layout: str | None = None


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
    Use(("HMGET", "{processing}", SAMPLE_ID), "--prefetch: what a slot's ids hold after a lost reply"),
    Use(("LPUSH", "{dead}", "e"), "dead letters"),
    Use(("LTRIM", "{dead}", "0", "0"), "dead letters"),
    Use(("LRANGE", "{dead}", "0", "0"), "delayed dead"),
    Use(("LREM", "{dead}", "1", "e"), "delayed dead requeue"),
    Use(("LLEN", "{dead}"), "info"),
    Use(("HINCRBY", "{recoveries}", "t", "1"), "sweep: poison-task cap"),
    Use(("HDEL", "{recoveries}", "t"), "sweep: poison-task cap"),
    Use(("EXPIRE", "{recoveries}", "60"), "sweep: poison-task cap"),
    Use(("RPUSH", "{poison}", "t"), "sweep: setting a poison task aside"),
    Use(("LRANGE", "{poison}", "0", "0"), "sweep: poison tasks waiting for their dead letter"),
    Use(("LREM", "{poison}", "1", "t"), "sweep: burying a poison task"),
    Use(("ZADD", "{scheduled}", "1", "t"), "scheduled tasks"),
    Use(("ZRANGEBYSCORE", "{scheduled}", "0", "1"), "promoting due tasks"),
    Use(("ZRANGE", "{scheduled}", "0", "0"), "promoting due tasks"),
    Use(("ZREM", "{scheduled}", "t"), "promoting due tasks"),
    Use(("ZREMRANGEBYRANK", "{scheduled}", "0", "0"), "promoting due tasks in bounded calls"),
    Use(("ZADD", "{workers}", "1", SAMPLE_ID), "worker registry"),
    Use(("ZREM", "{workers}", SAMPLE_ID), "worker registry"),
    Use(("ZRANGE", "{workers}", "0", "-1"), "info"),
    Use(("ZREMRANGEBYSCORE", "{workers}", "0", "1"), "sweep: worker registry"),
    Use(("SET", "{worker_id}", "1", "NX", "PX", "1000"), "claiming a worker id"),
    Use(("PEXPIRE", "{worker_id}", "1000"), "keep-alive"),
    Use(("GET", "{worker_id}"), "sweep: is the worker alive"),
    Use(("EXISTS", "{worker_id}"), "info: is the worker alive"),
    Use(("DEL", "{worker_id}"), "going offline"),
    Use(("TIME",), "due times on the server clock"),
    Use(("PUBLISH", "{scheduled}", "1"), "announcing scheduled tasks", required=False),
    Use(("SUBSCRIBE", "{scheduled}"), "idle workers sleeping until a task falls due", required=False),
    Use(("CLIENT", "ID"), "prompt stop of idle workers", required=False),
    Use(("CLIENT", "UNBLOCK", "1"), "prompt stop of idle workers", required=False),
    Use(("SCAN", "0"), "info and doctor without --queue", required=False),
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
    Use(("ZSCORE", "{workers}", SAMPLE_ID), "worker details: forgetting gone workers", required=False),
    Use(("HGETALL", "{worker_info}"), "delayed dashboard: workers page", required=False),
    # Task records (handles, ``~delayed_task:*``): every tracked enqueue, settle, read and cancel; on by
    # default for @app.task functions (result_ttl > 0). Their channels are optional: waiters then poll.
    Use(("HSET", "{record}", "s", "queued"), "tracked tasks: writing the record"),
    Use(("HGET", "{record}", "s"), "tracked tasks: settling the record (its enqueue time), cancel"),
    Use(("HGETALL", "{record}"), "tracked tasks: status and result"),
    Use(("HDEL", "{record}", "t"), "tracked tasks: cancelling a queued task"),
    Use(("DEL", "{record}"), "tracked tasks: a retry's record (written anew), a new run of a caller's id"),
    Use(("PEXPIRE", "{record}", "1000"), "tracked tasks: result_ttl"),
    Use(("HMGET", "{record}", "q"), "tracked tasks: a retry's record (written anew), unique ids"),
    Use(("SET", "{record}", "v", "PX", "1000"), "tracked tasks: settling the record (one string)"),
    Use(("GET", "{record}"), "tracked tasks: a settled record's status and result"),
    Use(("LREM", "{queue}", "1", "t"), "cancelling a queued task"),
    Use(("PUBLISH", "{record}", "done"), "waking result() waiters", required=False, layout=GO_DELAYED),
    Use(("SUBSCRIBE", "{record}"), "result() waiting without polling", required=False, layout=GO_DELAYED),
    Use(("SPUBLISH", "{record}", "done"), "waking result() waiters", required=False, layout=CLUSTER),
    Use(("SSUBSCRIBE", "{record}"), "result() waiting without polling", required=False, layout=CLUSTER),
    Use(("PUBLISH", "{cancel}", "w t"), "cancelling a running task", required=False),
    Use(("SUBSCRIBE", "{cancel}"), "workers hearing cancelled running tasks", required=False),
    # Rate limits and periodic tasks: keys shared by every queue (``~delayed:*``), needed only by apps that
    # use these features.
    Use(("SET", "{bound}", "1"), "bounded queues: recording the bound for delayed info"),
    Use(("GET", "{bound}"), "bounded queues, info"),
    Use(("SET", "delayed:rate:m:f", "1", "PX", "1000"), "rate limits: the next free start", required=False),
    Use(("GET", "delayed:rate:m:f"), "rate limits", required=False),
    Use(("HINCRBY", "delayed:rate:m:f:reserved", "d", "1"), "rate limits: reserved starts", required=False),
    Use(("PEXPIRE", "delayed:rate:m:f:reserved", "1000"), "rate limits: reserved starts", required=False),
    Use(("SADD", PERIODIC, "m:f"), "periodic tasks: the list of schedules", required=False),
    Use(("SMEMBERS", PERIODIC), "delayed periodic list", required=False),
    Use(("HSETNX", periodic_key("m:f"), "last_tick", "1"), "periodic tasks: a new schedule", required=False),
    Use(("HSET", periodic_key("m:f"), "f", "v"), "periodic tasks: claiming a tick", required=False),
    Use(("HGETALL", periodic_key("m:f")), "delayed periodic list", required=False),
)


def commands_listed(key: str | None = None) -> set[str]:
    """Lower-case names of the commands in :data:`USES`, or of those sent to the ``{key}`` placeholder
    (the tests compare them with the scripts)."""
    return {use.argv[0].lower() for use in USES if key is None or use.argv[1:2] == ("{" + key + "}",)}


def _argv(use: Use, keys: QueueKeys) -> list[str]:
    names = {"queue": keys.queue, "notifications": keys.notifications, "processing": keys.processing,
             "dead": keys.dead, "recoveries": keys.recoveries, "scheduled": keys.scheduled,
             "workers": keys.workers, "poison": keys.poison, "worker_info": keys.worker_info,
             "throughput": keys.throughput, "bound": keys.bound, "worker_id": SAMPLE_ID,
             "record": keys.record(SAMPLE_ID), "cancel": cancel_channel(keys.queue)}
    return [part.format(**names) if part.startswith("{") else part for part in use.argv]


def connected_user(client: redis.Redis) -> str:
    """The ACL user of the connection: ``ACL WHOAMI``, else the URL's, else ``default``."""
    try:
        return _text(client.execute_command("ACL", "WHOAMI"))
    except redis.exceptions.ResponseError:
        username = client.connection_pool.connection_kwargs.get("username")
        return username or "default"


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def check_acl(client: redis.Redis, version: tuple[int, ...], queues: list[str], user: str | None,
              layout: str = GO_DELAYED) -> list[Finding]:
    """One finding per command the user may not send, or one saying it may send all, or why it cannot tell."""
    user = user or connected_user(client)
    if (0,) < version < (7,):  # (0,): unknown version; ACL DRYRUN may still answer
        return [Finding("acl", Severity.INFO, f"ACL rights of {user!r} not checked: that needs ACL DRYRUN "
                        "(Redis 7 or later)")]
    findings: list[Finding] = []
    uses = [use for use in USES if use.layout in (None, layout)]
    for queue in queues:
        keys = QueueKeys.for_queue(queue, layout)
        with client.pipeline(transaction=False) as pipe:
            for use in uses:
                pipe.execute_command("ACL", "DRYRUN", user, *_argv(use, keys))
            answers = pipe.execute(raise_on_error=False)
        first_error = next((a for a in answers if isinstance(a, Exception)), None)
        if first_error is not None:
            return [_cannot_check(user, first_error)]
        for use, answer in zip(uses, answers, strict=True):
            text = _text(answer)
            if text != "OK":
                findings.append(_denied(user, queue, use, _argv(use, keys), text))
    if not findings:
        findings.append(Finding("acl", Severity.OK, f"user {user!r} may send every command pydelayed uses on "
                                f"{', '.join(queues) or 'the checked queues'}"))
    return findings


def _cannot_check(user: str, error: Exception) -> Finding:
    reason = " ".join(str(error).split())
    if isinstance(error, redis.exceptions.NoPermissionError):
        return Finding("acl", Severity.WARNING, f"cannot check the ACL rights of {user!r}: this connection may "
                       f"not run ACL DRYRUN ({reason})",
                       f"run `delayed doctor --broker <admin URL> --acl-user {user}`")
    return Finding("acl", Severity.WARNING, f"cannot check the ACL rights of {user!r}: {reason}",
                   "check --acl-user names an existing ACL user")


def _denied(user: str, queue: str, use: Use, argv: list[str], reason: str) -> Finding:
    command = argv[0].lower() + (f"|{argv[1].lower()}" if argv[0] in ("SCRIPT", "CLIENT") else "")
    lowered = reason.lower()
    if "channel" in lowered:
        rule = f"&{argv[1]}"
    elif "key" in lowered:
        rule = f"~{argv[1]}"
    else:
        rule = f"+{command}"
    # The command and the key or subcommand that matters: "RPUSH q", "CLIENT ID", "EVALSHA", "SCAN".
    keyed = len(use.argv) > 1 and (use.argv[1].startswith("{") or argv[0] in ("SCRIPT", "CLIENT"))
    shown = " ".join(argv[:2]) if keyed else argv[0]
    effect = "pydelayed fails without it" if use.required else "pydelayed works without it, degraded"
    return Finding("acl", Severity.ERROR if use.required else Severity.WARNING,
                   f"user {user!r} may not send {shown} ({use.purpose}; {effect}): {' '.join(reason.split())}",
                   f"ACL SETUSER {user} {rule}", queue=queue, details={"command": command, "rule": rule})
