"""Registers the executors under their configuration names, and declares their settings."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry
from delayed_core.settings import SettingsRegistry

from .asyncio_executor import AsyncioExecutor
from .fork import ForkExecutor
from .subprocess_executor import MAX_MEMORY_PER_CHILD, MAX_TASKS_PER_CHILD, SubprocessExecutor
from .thread import ThreadExecutor


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register ``thread`` (default), ``fork``, ``subprocess`` and ``asyncio``."""
    registry.add_executor("thread", ThreadExecutor)
    registry.add_executor("fork", ForkExecutor)
    registry.add_executor("subprocess", SubprocessExecutor)
    registry.add_executor("asyncio", AsyncioExecutor)


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare the subprocess executor's child recycling: ``max_tasks_per_child``, ``max_memory_per_child``."""
    settings.add(MAX_TASKS_PER_CHILD, MAX_MEMORY_PER_CHILD)
