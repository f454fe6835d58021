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

- ``delayed_task:<id>``: a tracked task's record, with a TTL: a string or a hash while the task is
  pending, one string once a worker or the sweeper settles it (a task cancelled before it ran gets a
  hash: ``tracking.py``);
  also the pub/sub channel on which the call finishing the task announces it;
- ``delayed_cancel:<queue>``: pub/sub channel only, stop requests for the queue's running tasks.

A queue whose name ends in one of these suffixes would share keys with another queue (``jobs_noti`` is
the notification list of ``jobs``), and tasks would vanish silently: such names are refused.

The cluster layout (``key_layout = "cluster"``, implied by ``redis+cluster://`` URLs; docs/scaling.md)
puts every key of a queue in one Redis Cluster hash slot with the hash tag ``{N}``: the list is ``{N}``,
the others ``{N}_noti``, ``{N}_processing``... (the same suffixes), and the keys that go-delayed keeps
outside the queue move into it:

- ``{N}_alive:<worker id>``: a worker's liveness key, one per queue it serves (not shared by queues);
- ``{N}_periodic`` and ``{N}_periodic:<name>``: the schedules that enqueue into ``N``;
- ``{N}_delayed:rate:<function>`` (and ``:reserved``): a rate limit, counted per queue;
- ``{N}_task:<id>``: a tracked task's record (``delayed_task:<id>`` above), in the slot of its queue, so
  that the scripts moving the task write it; also the shard channel (SPUBLISH) announcing its end.

Go workers and delayed 1.x cannot read the cluster layout (docs/interop.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from delayed_core.errors import ConfigError
from delayed_core.settings import Setting

from .cluster import is_cluster_url

#: go-delayed's key layout (the default), and the Redis Cluster one: every key of a queue in one slot
GO_DELAYED = "go-delayed"
CLUSTER = "cluster"
LAYOUTS = (GO_DELAYED, CLUSTER)


def _known_layout(value: str) -> str | None:
    return None if value in LAYOUTS else f"must be one of {', '.join(LAYOUTS)}"


#: the setting that picks the layout (declared in ``delayed_redis.plugin``); a cluster URL implies "cluster"
KEY_LAYOUT: Setting[str] = Setting(
    "key_layout", str, GO_DELAYED, "Redis key layout: go-delayed (readable by Go and delayed 1.x workers) "
    "or cluster (every key of a queue in one Redis Cluster hash slot; implied by redis+cluster:// URLs)",
    _known_layout)

def layout_for(url: str, config: Any = None) -> str:
    """The layout of an app's queues: "cluster" for a ``redis+cluster://`` or ``rediss+cluster://`` URL,
    else the ``key_layout`` setting of ``config`` (go-delayed's when there is no config)."""
    if is_cluster_url(url):
        return CLUSTER
    return str(config.get(KEY_LAYOUT)) if config is not None else GO_DELAYED


#: set of periodic schedule names
PERIODIC = "delayed:periodic"

#: Prefix of task records (and of the channels announcing their end).
RECORD_PREFIX = "delayed_task:"
#: Prefix of the channel on which stop requests for a queue's running tasks are published.
CANCEL_CHANNEL = "delayed_cancel:"

#: Suffixes of the keys beside a queue's list; a queue name may not end in one.
RESERVED_SUFFIXES = ("_noti", "_processing", "_scheduled", "_dead", "_recoveries", "_workers", "_poison",
                     "_worker_info", "_throughput", "_bound")


def check_queue_name(name: str, layout: str = GO_DELAYED) -> str:
    """Return ``name``, or raise ConfigError when it would clash with another queue's keys (or, in the
    cluster layout, hold a brace, which would move its keys to another hash slot)."""
    if layout == CLUSTER and ("{" in name or "}" in name):
        raise ConfigError(f"queue name {name!r} holds a brace, which the cluster key layout uses as the hash "
                          f"tag of the queue's keys; pick a name without {{ or }}")
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
    #: the key layout these names follow (GO_DELAYED or CLUSTER)
    layout: str = GO_DELAYED
    #: the liveness key of worker ``w`` is this prefix + ``w`` ("" in go-delayed's root keyspace)
    liveness_prefix: str = ""
    #: set of the periodic schedule names, and the prefix of their records (+ ":<name>")
    periodic: str = PERIODIC
    #: a tracked task's record is this prefix + its id (see :meth:`record`)
    record_prefix: str = RECORD_PREFIX

    @classmethod
    def for_queue(cls, name: str, layout: str = GO_DELAYED) -> QueueKeys:
        """The keys of queue ``name`` in ``layout``; ConfigError when the name ends in a reserved suffix."""
        check_queue_name(name, layout)
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown key layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        base = f"{{{name}}}" if layout == CLUSTER else name
        return cls(
            queue=base,
            notifications=f"{base}_noti",
            processing=f"{base}_processing",
            scheduled=f"{base}_scheduled",
            dead=f"{base}_dead",
            recoveries=f"{base}_recoveries",
            workers=f"{base}_workers",
            poison=f"{base}_poison",
            worker_info=f"{base}_worker_info",
            throughput=f"{base}_throughput",
            bound=f"{base}_bound",
            layout=layout,
            liveness_prefix=f"{base}_alive:" if layout == CLUSTER else "",
            periodic=f"{base}_periodic" if layout == CLUSTER else PERIODIC,
            record_prefix=f"{base}_task:" if layout == CLUSTER else RECORD_PREFIX,
        )

    @property
    def clustered(self) -> bool:
        """True in the cluster layout."""
        return self.layout == CLUSTER

    def liveness(self, worker_id: str) -> str:
        """The liveness key of ``worker_id`` for this queue (the id itself in go-delayed's layout)."""
        return self.liveness_prefix + worker_id

    def record(self, task_id: str) -> str:
        """The record's key (and channel) of tracked task ``task_id``: ``delayed_task:<id>`` in go-delayed's
        layout, where any queue's tracker finds it by id alone; ``{N}_task:<id>`` in the cluster layout."""
        return self.record_prefix + task_id

    def periodic_record(self, name: str) -> str:
        """The hash holding the record of periodic schedule ``name``."""
        return f"{self.periodic}:{name}"

    def rate(self, limit_key: str) -> str:
        """The key of the rate limit ``limit_key`` (``delayed:rate:<function>``): as given in go-delayed's
        layout, in this queue's slot in the cluster layout (so the limit counts per queue there)."""
        return f"{self.queue}_{limit_key}" if self.clustered else limit_key

    def all(self) -> tuple[str, ...]:
        """Every key, for ``clear``."""
        return (self.queue, self.notifications, self.processing, self.scheduled, self.dead,
                self.recoveries, self.workers, self.poison, self.worker_info, self.throughput, self.bound)


def record_key(task_id: str) -> str:
    """The record's key (and channel) of a tracked task."""
    return RECORD_PREFIX + task_id


def cancel_channel(queue: str) -> str:
    """The channel of stop requests for ``queue``'s running tasks."""
    return CANCEL_CHANNEL + queue
