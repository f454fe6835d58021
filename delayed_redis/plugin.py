"""The Redis plugin: registers the ``redis`` broker and sweeper."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry

from .broker import RedisBroker
from .doctor import delayed_doctor_checks  # noqa: F401 - a hook of this plugin, kept in its own module
from .sweeper import RedisSweeper


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register the Redis broker and sweeper under the name ``redis``."""
    registry.add_broker("redis", RedisBroker)
    registry.add_sweeper("redis", RedisSweeper)
