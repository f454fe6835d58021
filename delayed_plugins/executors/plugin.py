"""Registers the executors under their configuration names, and declares their settings.

Executors are registered by path: a process imports only the one it runs (an admin command none, a
thread worker neither asyncio's nor the fork server's).
"""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry
from delayed_core.settings import SettingsRegistry

from .recycling import MAX_MEMORY_PER_CHILD, MAX_TASKS_PER_CHILD


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register ``thread`` (default), ``fork``, ``subprocess`` and ``asyncio``."""
    registry.add_executor("thread", f"{__package__}.thread:ThreadExecutor")
    registry.add_executor("fork", f"{__package__}.fork:ForkExecutor")
    registry.add_executor("subprocess", f"{__package__}.subprocess_executor:SubprocessExecutor")
    registry.add_executor("asyncio", f"{__package__}.asyncio_executor:AsyncioExecutor")


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare the subprocess executor's child recycling: ``max_tasks_per_child``, ``max_memory_per_child``."""
    settings.add(MAX_TASKS_PER_CHILD, MAX_MEMORY_PER_CHILD)
