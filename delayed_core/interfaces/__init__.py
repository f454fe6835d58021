"""The four component interfaces plugins implement: Broker, Serializer, Executor, Sweeper."""

from .broker import AsyncBroker, Broker, QueueInfo, ScheduleWatcher, SweepReport
from .executor import Executor, ExecutorContext
from .monitoring import Monitoring, Throughput
from .serializer import Serializer
from .sweeper import Sweeper

__all__ = [
    "AsyncBroker",
    "Broker",
    "Executor",
    "ExecutorContext",
    "Monitoring",
    "QueueInfo",
    "ScheduleWatcher",
    "Serializer",
    "SweepReport",
    "Sweeper",
    "Throughput",
]
