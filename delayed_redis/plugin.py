"""The Redis plugin: registers the ``redis`` broker and its URL schemes."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry

from .broker import RedisBroker
from .doctor import delayed_doctor_checks  # noqa: F401 - a hook of this plugin, kept in its own module


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register the Redis broker as ``redis``, picked by ``redis://``, ``rediss://``, ``unix://`` and the
    Sentinel URLs ``redis+sentinel://`` and ``rediss+sentinel://``."""
    registry.add_broker("redis", RedisBroker, schemes=("redis", "rediss", "unix", "redis+sentinel",
                                                       "rediss+sentinel"))
