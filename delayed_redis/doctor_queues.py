"""The per-queue part of ``delayed doctor`` on Redis: notifications, held tasks, dead letters.

Everything is read, nothing written; ``--repair`` is the sweeper's business (see delayed_core/cli/doctor.py).
"""

from __future__ import annotations

import collections
import json
import re
import time
from typing import TYPE_CHECKING

import redis

from delayed_core.doctor import Finding, Severity
from delayed_core.errors import TaskDecodeError

from .keys import GO_DELAYED, QueueKeys

if TYPE_CHECKING:
    from delayed_core.app import Delayed

#: a snapshot that differs is looked at again after this long, so a worker caught between its BLPOP and
#: its dequeue script (one notification taken, its task not yet) does not count as drift
SETTLE = 0.3
#: dead letters read to measure growth (newest first)
DEAD_SAMPLE = 1000
#: ids of go-delayed and delayed 1.0 workers; delayed 1.2 uses small decimal numbers (and releases)
GO_STYLE_ID = re.compile(r"^[0-9a-f]{32}$")
SWEEP_FIX = "run `delayed sweeper`, or `delayed doctor --repair` once"


def check_queue(app: Delayed, client: redis.Redis, queue: str, layout: str = GO_DELAYED) -> list[Finding]:
    """Every check of one queue, its keys named as ``layout`` names them."""
    keys = QueueKeys.for_queue(queue, layout)
    return [*check_notifications(client, keys, queue), *check_held(app, client, keys, queue),
            *check_dead_letters(app, client, keys, queue)]


def _lengths(client: redis.Redis, keys: QueueKeys) -> tuple[int, int]:
    with client.pipeline(transaction=False) as pipe:  # no MULTI: a minimal ACL user may lack it
        length, notifications = pipe.llen(keys.queue).llen(keys.notifications).execute()
    return int(length), int(notifications)


def check_notifications(client: redis.Redis, keys: QueueKeys, queue: str) -> list[Finding]:
    """Workers block on N_noti, one entry per task: fewer strands tasks, more wakes workers for nothing."""
    length, notifications = _lengths(client, keys)
    if length != notifications:
        time.sleep(SETTLE)
        length, notifications = _lengths(client, keys)
    details = {"length": length, "notifications": notifications}
    if notifications < length:
        return [Finding("notifications", Severity.ERROR,
                        f"{length - notifications} of {length} waiting task(s) have no notification: no worker "
                        "takes them until a sweep repairs it", SWEEP_FIX, queue, True, details)]
    if notifications > length:
        return [Finding("notifications", Severity.WARNING,
                        f"{notifications - length} notification(s) without a task ({notifications} for {length} "
                        "task(s)): workers wake up for nothing", SWEEP_FIX, queue, True, details)]
    return [Finding("notifications", Severity.OK, f"notifications match the {length} waiting task(s)",
                    queue=queue, details=details)]


def check_held(app: Delayed, client: redis.Redis, keys: QueueKeys, queue: str) -> list[Finding]:
    """Tasks in N_processing: held by dead workers (the sweeper's job), or by live non-pydelayed workers."""
    held = {key.decode(errors="replace"): raw for key, raw in client.hgetall(keys.processing).items()}
    if not held:
        return []
    ids = sorted(held)
    with client.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.exists(keys.liveness(worker_id))
            pipe.zscore(keys.workers, worker_id)
        answers = pipe.execute()
    config = app.config.for_queue(queue)
    late = config["keep_alive_timeout"] + 2 * config["sweeper_interval"]
    findings = []
    for index, worker_id in enumerate(ids):
        alive, seen = bool(answers[2 * index]), answers[2 * index + 1]
        task = _describe(app, held[worker_id])
        if not alive:
            findings.append(_dead_holder(queue, worker_id, task, seen, late))
        elif seen is None and GO_STYLE_ID.match(worker_id):
            findings.append(Finding(
                "go-worker-entry", Severity.WARNING,
                f"{task} is held by live worker {worker_id}, which is not a pydelayed worker (a go-delayed or "
                "delayed 1.0 worker, by its id). go-delayed never releases a task: if that worker is idle, "
                "this is a task it finished, and it runs again once that worker stops. Redis does not say "
                "how long the entry has been there",
                f"upgrade the Go workers; or, once that worker is idle, HDEL {keys.processing} {worker_id}",
                queue, details={"worker": worker_id, "task": task}))
    return findings


def _dead_holder(queue: str, worker_id: str, task: str, seen: float | None, late: float) -> Finding:
    details: dict[str, object] = {"worker": worker_id, "task": task}
    if seen is None:
        return Finding("dead-worker", Severity.WARNING,
                       f"{task} is held by dead worker {worker_id} (not a pydelayed worker, so its age is unknown)",
                       SWEEP_FIX, queue, True, details)
    age = max(0.0, time.time() - float(seen) / 1000)
    details["seconds_since_keep_alive"] = round(age, 1)
    if age > late:
        return Finding("dead-worker", Severity.ERROR,
                       f"{task} is held by dead worker {worker_id}, silent for {age:.0f}s: no sweeper has "
                       f"recovered it (one should within {late:.0f}s); is a sweeper running?",
                       SWEEP_FIX, queue, True, details)
    return Finding("dead-worker", Severity.WARNING,
                   f"{task} is held by dead worker {worker_id}, silent for {age:.0f}s; the next sweep requeues it",
                   SWEEP_FIX, queue, True, details)


def _describe(app: Delayed, raw: bytes) -> str:
    try:
        return f"task {app.serializer.loads(raw).func_path}"
    except TaskDecodeError:
        return "an undecodable task"


def check_dead_letters(app: Delayed, client: redis.Redis, keys: QueueKeys, queue: str) -> list[Finding]:
    """How many dead letters, how many lately and why, and whether the list is full (dropping the oldest)."""
    with client.pipeline(transaction=False) as pipe:
        total, entries = pipe.llen(keys.dead).lrange(keys.dead, 0, DEAD_SAMPLE - 1).execute()
    total = int(total)
    if total == 0:
        return [Finding("dead-letters", Severity.OK, "no dead letters", queue=queue)]
    now = time.time()
    last_hour: collections.Counter[str] = collections.Counter()
    last_day = 0
    for entry in entries:
        try:
            letter = json.loads(entry)
            age = now - float(letter["time"])
        except (ValueError, KeyError, TypeError):
            continue  # a malformed entry is `delayed dead list`'s to show, not a growth figure
        if age > 86400:
            break  # newest first: the rest is older
        last_day += 1
        if age <= 3600:
            last_hour[str(letter.get("reason", "?"))] += 1
    details = {"total": total, "last_hour": sum(last_hour.values()), "last_day": last_day}
    fix = f"inspect with `delayed dead list --queue {queue}`; then `delayed dead requeue` or `purge`"
    findings = []
    if last_hour:
        reasons = ", ".join(f"{reason} {count}" for reason, count in last_hour.most_common())
        findings.append(Finding("dead-letters", Severity.WARNING,
                                f"{sum(last_hour.values())} task(s) dead-lettered in the last hour ({reasons}), "
                                f"{last_day} in the last 24 h, {total} kept", fix, queue, details=details))
    else:
        findings.append(Finding("dead-letters", Severity.INFO,
                                f"{total} dead letter(s) kept, none in the last hour ({last_day} in the last 24 h)",
                                fix, queue, details=details))
    keep = app.config.for_queue(queue)["dead_letter_max"]
    if total >= keep:
        findings.append(Finding("dead-letters-full", Severity.WARNING,
                                f"the dead-letter list holds its maximum of {keep}: each new dead letter drops "
                                "the oldest", f"{fix}; or raise dead_letter_max", queue, details={"max": keep}))
    return findings
