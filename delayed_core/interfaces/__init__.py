"""The four component interfaces plugins implement: Broker, Serializer, Executor, Sweeper."""

from .broker import AsyncBroker, Broker, QueueInfo, ScheduleWatcher, SweepReport
from .executor import Executor, ExecutorContext
from .serializer import Serializer
from .sweeper import Sweeper

__all__ = [
    "AsyncBroker",
    "Broker",
    "Executor",
    "ExecutorContext",
    "QueueInfo",
    "ScheduleWatcher",
    "Serializer",
    "SweepReport",
    "Sweeper",
]
