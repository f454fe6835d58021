"""The ACL part of ``delayed doctor``: whether a user may send every command pydelayed sends.

``ACL DRYRUN`` (Redis >= 7) answers for one user, one command, its keys and channels, without running
anything. It is asked about each command of the table in doctor_acl_uses.py, on the checked queue's real
keys and channels in the app's key layout (and the cluster client's own commands on ``redis+cluster://``
URLs). A denied command is a finding naming the command and the ``ACL SETUSER`` rule that grants it: the
pattern the docs give for that key (``~q_*``, ``~delayed_task:*``, ``~{q}*``...), not the sampled key.
"""

from __future__ import annotations

import redis

from delayed_core.doctor import Finding, Severity

from .doctor_acl_uses import SAMPLE_ID, USES, Use, argv_for, commands_listed, placeholder, uses_for
from .keys import GO_DELAYED, RECORD_PREFIX, QueueKeys

__all__ = ["SAMPLE_ID", "USES", "Use", "check_acl", "commands_listed", "connected_user"]

#: go-delayed's worker ids in the root keyspace: 32 hex chars, matched by a 32-character glob
WORKER_ID_GLOB = "[0-9a-f]" * 32
#: placeholders of keys every queue shares in go-delayed's layout (``~delayed:*``)
_SHARED = ("rate", "rate_reserved", "periodic", "periodic_record")
#: commands whose first argument is a subcommand, named ``command|subcommand`` in ACL rules
_WITH_SUBCOMMANDS = ("SCRIPT", "CLIENT", "CLUSTER")


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
              layout: str = GO_DELAYED, cluster_client: bool = False) -> list[Finding]:
    """One finding per command the user may not send, or one saying it may send all, or why it cannot tell.

    :param layout: the app's key layout (the keys and channels asked about).
    :param cluster_client: True for a ``redis+cluster://`` URL (the cluster client's own commands too).
    """
    user = user or connected_user(client)
    if (0,) < version < (7,):  # (0,): unknown version; ACL DRYRUN may still answer
        return [Finding("acl", Severity.INFO, f"ACL rights of {user!r} not checked: that needs ACL DRYRUN "
                        "(Redis 7 or later)")]
    findings: list[Finding] = []
    uses = uses_for(layout, cluster_client)
    for queue in queues:
        keys = QueueKeys.for_queue(queue, layout)
        with client.pipeline(transaction=False) as pipe:
            for use in uses:
                pipe.execute_command("ACL", "DRYRUN", user, *argv_for(use, keys))
            answers = pipe.execute(raise_on_error=False)
        first_error = next((a for a in answers if isinstance(a, Exception)), None)
        if first_error is not None:
            return [_cannot_check(user, first_error)]
        allowed = {(use.argv[0], placeholder(use)) for use, answer in zip(uses, answers, strict=True)
                   if _text(answer) == "OK"}
        for use, answer in zip(uses, answers, strict=True):
            text = _text(answer)
            if text != "OK":
                paired = bool(use.needed_with) and (use.needed_with, placeholder(use)) in allowed
                findings.append(_denied(user, queue, use, keys, text, paired))
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


def _denied(user: str, queue: str, use: Use, keys: QueueKeys, reason: str, paired: bool) -> Finding:
    """The finding for one refused command; ``paired``: the user may send the command that makes this one
    required (``needed_with``)."""
    argv = argv_for(use, keys)
    command = argv[0].lower() + (f"|{argv[1].lower()}" if argv[0] in _WITH_SUBCOMMANDS else "")
    lowered = reason.lower()
    if "channel" in lowered:
        rule = "&" + channel_pattern(use, keys)
    elif "key" in lowered:
        rule = key_rule(use, keys)
    else:
        rule = f"+{command}"
    # The command and the key or subcommand that matters: "RPUSH q", "CLIENT ID", "EVALSHA", "SCAN".
    keyed = placeholder(use) is not None or argv[0] in _WITH_SUBCOMMANDS
    shown = " ".join(argv[:2]) if keyed else argv[0]
    required = use.required or paired
    if paired:
        effect = f"it may send {use.needed_with}, so without this result() sleeps until its timeout"
    elif use.without:
        effect = use.without
    else:
        effect = "pydelayed fails without it" if required else "pydelayed works without it, degraded"
    return Finding("acl", Severity.ERROR if required else Severity.WARNING,
                   f"user {user!r} may not send {shown} ({use.purpose}; {effect}): {' '.join(reason.split())}",
                   f"ACL SETUSER {user} {rule}", queue=queue, details={"command": command, "rule": rule})


def glob_escaped(text: str) -> str:
    """``text`` as an ACL pattern matching itself only (``*?[]\\`` escaped)."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def key_rule(use: Use, keys: QueueKeys) -> str:
    """The key patterns that grant ``use``'s key, as the docs give them (docs/reliability.md): the queue's
    hash tag ``~{q}*`` in the cluster layout; in go-delayed's ``~q``, ``~q_*``, the worker id glob, or the
    shared prefixes ``~delayed_task:*`` and ``~delayed:*``."""
    name, queue = placeholder(use), glob_escaped(keys.queue)
    if keys.clustered:
        return f"~{queue}*"
    if name == "alive":
        return f"~{WORKER_ID_GLOB}"
    if name == "record":
        return f"~{glob_escaped(RECORD_PREFIX)}*"
    if name in _SHARED:
        return "~delayed:*"
    if name == "queue":
        return f"~{queue}"
    if name is None:  # a script's keys: the list and its notifications
        return f"~{queue} ~{queue}_*"
    return f"~{queue}_*"


def channel_pattern(use: Use, keys: QueueKeys) -> str:
    """The channel pattern that grants ``use``'s channel: every record's of the queue (their ids vary), or
    the one channel (the queue's scheduled tasks, its cancel requests)."""
    if placeholder(use) == "record":
        return glob_escaped(keys.record_prefix) + "*"
    return glob_escaped(argv_for(use, keys)[1])
