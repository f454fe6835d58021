"""The Broker interface: moves serialized tasks for ONE queue. It is composed of five roles:

- :class:`Producer` (``producer.py``): enqueue, schedule, length;
- :class:`Consumer` (``consumer.py``): what worker slots do: dequeue, release and take, requeue,
  dead-letter, wake, and the several-queue variants;
- :class:`Liveness` (``liveness.py``): claim a slot id, keep ids alive, go offline;
- :class:`Sweeper` (``sweeper.py``): maintenance: sweep lost work, bury poison tasks, promote due tasks;
- :class:`Admin` (``admin.py``): info, queue discovery, dead letters;
- optionally :class:`~.tracking.TaskTracker` (``tracking.py``, through ``tracker_class``): records of
  tracked tasks, written by the calls that move them (task handles, docs/results.md).

A broker never sees Task objects, only bytes; the serializer turns tasks into bytes and back. Every
method is one atomic operation on the broker's side, so a worker killed at any moment leaves a state
the sweeper can repair (see docs/concepts.md). A third-party broker proves it with the contract suite,
:mod:`delayed_core.testing.contract` (see docs/extending.md).

Implementers write the abstract methods of every role plus :meth:`Broker.from_url`, and register the
class with its URL schemes (``registry.add_broker("name", cls, schemes=("name",))``). Raise
:class:`~delayed_core.errors.BrokerUnavailable` when the backing service cannot be reached; workers catch
it, back off and retry.
"""

from __future__ import annotations

import abc

from .admin import Admin, QueueInfo
from .consumer import Consumer
from .liveness import Liveness
from .producer import AsyncBroker, Producer
from .sweeper import Poisoned, ScheduleWatcher, Sweeper, SweepReport
from .tracking import TaskTracker

__all__ = ["AsyncBroker", "Broker", "Poisoned", "QueueInfo", "ScheduleWatcher", "SweepReport"]


class Broker(Producer, Consumer, Liveness, Sweeper, Admin):
    """Stores one queue's tasks and the tasks its workers hold.

    :param name: the queue name.
    """

    #: the asyncio twin used by ``app.async_queue``, if this broker has one
    async_broker: type[AsyncBroker] | None = None
    #: True when the queues live inside one process (no other process can see them), so commands that
    #: run in their own process (``delayed worker``, ``info`` ...) refuse this broker
    process_local: bool = False
    #: the optional task-tracking role (:mod:`.tracking`): built from the broker, None when the broker
    #: keeps no task records (tasks on it are then never tracked)
    tracker_class: type[TaskTracker] | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, name: str, shared: dict[str, object]) -> Broker:
        """Build the broker for queue ``name`` at ``url``.

        :param shared: a dict owned by the app, where brokers of the same class cache what queues can
            share (a connection pool per URL).
        """

    def close(self) -> None:
        """Release connections. The default does nothing."""
