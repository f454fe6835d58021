"""The four component interfaces plugins implement: Broker, Serializer, Executor, Sweeper; and the
optional broker role FlowControl (bounded queues, rate limits)."""

from .broker import AsyncBroker, Broker, QueueInfo, ScheduleWatcher, SweepReport
from .executor import Executor, ExecutorContext
from .flow import FlowControl
from .serializer import Serializer
from .sweeper import Sweeper

__all__ = [
    "AsyncBroker",
    "Broker",
    "Executor",
    "ExecutorContext",
    "FlowControl",
    "QueueInfo",
    "ScheduleWatcher",
    "Serializer",
    "SweepReport",
    "Sweeper",
]
