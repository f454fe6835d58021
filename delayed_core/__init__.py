"""pydelayed's core: the public API, interfaces and hooks. It never imports redis or msgpack; those
come with the default plugins (``delayed_redis``, ``delayed_plugins``).
"""

from .app import Delayed
from .async_queue import AsyncQueue
from .config import Config, load_config
from .deadletter import DeadLetter, Reason
from .errors import (
    BrokerUnavailable,
    ConfigError,
    DelayedError,
    QueueFull,
    TaskDecodeError,
    TaskNotAllowed,
    TaskTimeout,
)
from .markers import hookimpl, hookspec
from .outcome import Outcome, Status
from .queue import Queue
from .sweeper import SweepLoop
from .task import GoTask, PyTask, Task
from .task_function import TaskFunction
from .worker import Worker

__all__ = [
    "AsyncQueue",
    "BrokerUnavailable",
    "Config",
    "ConfigError",
    "DeadLetter",
    "Delayed",
    "DelayedError",
    "GoTask",
    "Outcome",
    "PyTask",
    "Queue",
    "QueueFull",
    "Reason",
    "Status",
    "SweepLoop",
    "Task",
    "TaskDecodeError",
    "TaskFunction",
    "TaskNotAllowed",
    "TaskTimeout",
    "Worker",
    "hookimpl",
    "hookspec",
    "load_config",
]
