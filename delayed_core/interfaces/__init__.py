"""The component interfaces plugins implement: Broker (with its roles), Serializer, Executor.

A broker is composed of five roles: Producer, Consumer, Liveness, Sweeper (its maintenance) and Admin.
A broker may add the optional Monitoring role, which ``delayed dashboard`` reads.
"""

from .admin import Admin, QueueInfo
from .broker import Broker
from .consumer import Consumer
from .executor import Executor, ExecutorContext
from .liveness import Liveness
from .monitoring import Monitoring, Throughput
from .producer import AsyncBroker, Producer
from .serializer import Serializer
from .sweeper import Poisoned, ScheduleWatcher, Sweeper, SweepReport

__all__ = [
    "Admin",
    "AsyncBroker",
    "Broker",
    "Consumer",
    "Executor",
    "ExecutorContext",
    "Liveness",
    "Monitoring",
    "Poisoned",
    "Producer",
    "QueueInfo",
    "ScheduleWatcher",
    "Serializer",
    "SweepReport",
    "Sweeper",
    "Throughput",
]
