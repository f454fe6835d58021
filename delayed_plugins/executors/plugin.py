"""Registers the executors under their configuration names."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry

from .asyncio_executor import AsyncioExecutor
from .fork import ForkExecutor
from .subprocess_executor import SubprocessExecutor
from .thread import ThreadExecutor


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register ``thread`` (default), ``fork``, ``subprocess`` and ``asyncio``."""
    registry.add_executor("thread", ThreadExecutor)
    registry.add_executor("fork", ForkExecutor)
    registry.add_executor("subprocess", SubprocessExecutor)
    registry.add_executor("asyncio", AsyncioExecutor)
