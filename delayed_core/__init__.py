"""pydelayed's core: the public API, interfaces and hooks. It never imports redis or msgpack; those
come with the default plugins (``delayed_redis``, ``delayed_plugins``).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .app import Delayed
    from .async_queue import AsyncQueue
    from .config import Config, load_config
    from .deadletter import DeadLetter, Reason
    from .outcome import Outcome, Status
    from .queue import Queue
    from .sweeper import SweepLoop
    from .task import GoTask, PyTask, Task
    from .task_function import TaskFunction
    from .worker import Worker

#: public name -> the module defining it, imported on first use: every plugin imports this package (for
#: ``hookimpl``), and a command such as ``delayed info`` should not pay for the worker's modules.
_LAZY = {
    "Delayed": "app", "AsyncQueue": "async_queue", "Config": "config", "load_config": "config",
    "DeadLetter": "deadletter", "Reason": "deadletter", "Outcome": "outcome", "Status": "outcome",
    "Queue": "queue", "SweepLoop": "sweeper", "GoTask": "task", "PyTask": "task", "Task": "task",
    "TaskFunction": "task_function", "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *_LAZY})


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
