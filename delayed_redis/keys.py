"""The only place Redis key names are built.

go-delayed's layout for a queue named ``N`` is a public contract and is never changed:

- ``N``: list of task bytes;
- ``N_noti``: list with one ``"1"`` per task a worker may take;
- ``N_processing``: hash worker id -> the task that worker holds;
- ``<worker id>``: liveness key with a TTL, in the root keyspace, shared by all queues.

pydelayed adds keys beside them (go-delayed processes never read them):

- ``N_scheduled``: sorted set of tasks waiting for their due time; also the name of the pub/sub channel
  on which their due times are announced to workers;
- ``N_dead``: list of JSON dead-letter entries, newest first;
- ``N_recoveries``: hash sha1(task) -> how often a sweeper recovered it (poison-task cap);
- ``N_poison``: list of poison tasks a sweep set aside, each until the sweeper stores its dead letter
  (empty but for a moment, or after a sweeper was killed at that moment: the next sweep finishes it);
- ``N_workers``: sorted set of pydelayed worker ids -> last keep-alive time (for ``delayed info``);
- ``N_worker_info``: hash worker id -> JSON details (host, pid, start time, queues), written once when a
  worker starts, for the dashboard;
- ``N_throughput``: hash ``d:<minute>`` / ``f:<minute>`` -> tasks done / dead-lettered in that unix
  minute, counted by the release and dead-letter scripts, for the dashboard's chart;
- ``N_bound``: the ``max_length`` of the last bounded enqueue, for ``delayed info`` (a key of the queue,
  so that the minimal ACL ``~N ~N_*`` covers bounded queues).

and keys shared by every queue:

- ``delayed:periodic``: set of periodic schedule names; ``delayed:periodic:<name>``: hash, the record
  of one schedule (last claimed tick, facts for ``delayed periodic list``);
- ``delayed:rate:<function>``: the next free start time of a rate-limited function, and
  ``delayed:rate:<function>:reserved``: hash of the starts reserved for tasks put aside.

Task handles add, outside any queue's names (docs/results.md):

- ``delayed_task:<id>``: hash, a tracked task's record, with a TTL; also the pub/sub channel on which the
  call finishing the task announces it;
- ``delayed_cancel:<queue>``: pub/sub channel only, stop requests for the queue's running tasks.

A queue whose name ends in one of these suffixes would share keys with another queue (``jobs_noti`` is
the notification list of ``jobs``), and tasks would vanish silently: such names are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from delayed_core.errors import ConfigError

#: set of periodic schedule names
PERIODIC = "delayed:periodic"


def periodic_key(name: str) -> str:
    """The hash holding the record of periodic schedule ``name``."""
    return f"{PERIODIC}:{name}"

#: Suffixes of the keys beside a queue's list; a queue name may not end in one.
RESERVED_SUFFIXES = ("_noti", "_processing", "_scheduled", "_dead", "_recoveries", "_workers", "_poison",
                     "_worker_info", "_throughput", "_bound")


def check_queue_name(name: str) -> str:
    """Return ``name``, or raise ConfigError when it would clash with another queue's keys."""
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise ConfigError(
                f"queue name {name!r} ends in {suffix!r}, which names a key of queue "
                f"{name[: -len(suffix)]!r}; pick a name that does not end in any of "
                f"{', '.join(RESERVED_SUFFIXES)}")
    return name


@dataclass(frozen=True)
class QueueKeys:
    """Every key of one queue."""

    queue: str
    notifications: str
    processing: str
    scheduled: str
    dead: str
    recoveries: str
    workers: str
    poison: str
    worker_info: str
    throughput: str
    bound: str

    @classmethod
    def for_queue(cls, name: str) -> QueueKeys:
        """The keys of queue ``name``; ConfigError when the name ends in a reserved suffix."""
        check_queue_name(name)
        return cls(
            queue=name,
            notifications=f"{name}_noti",
            processing=f"{name}_processing",
            scheduled=f"{name}_scheduled",
            dead=f"{name}_dead",
            recoveries=f"{name}_recoveries",
            workers=f"{name}_workers",
            poison=f"{name}_poison",
            worker_info=f"{name}_worker_info",
            throughput=f"{name}_throughput",
            bound=f"{name}_bound",
        )

    def all(self) -> tuple[str, ...]:
        """Every key, for ``clear``."""
        return (self.queue, self.notifications, self.processing, self.scheduled, self.dead,
                self.recoveries, self.workers, self.poison, self.worker_info, self.throughput, self.bound)


#: Prefix of task records (and of the channels announcing their end).
RECORD_PREFIX = "delayed_task:"
#: Prefix of the channel on which stop requests for a queue's running tasks are published.
CANCEL_CHANNEL = "delayed_cancel:"


def record_key(task_id: str) -> str:
    """The record's key (and channel) of a tracked task."""
    return RECORD_PREFIX + task_id


def cancel_channel(queue: str) -> str:
    """The channel of stop requests for ``queue``'s running tasks."""
    return CANCEL_CHANNEL + queue
