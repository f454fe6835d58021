"""The Redis plugin: registers the ``redis`` broker with its URL schemes, and declares its settings."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry
from delayed_core.settings import SettingsRegistry

from .broker import RedisBroker
from .doctor import delayed_doctor_checks  # noqa: F401 - a hook of this plugin, kept in its own module
from .keys import KEY_LAYOUT
from .replicas import REPLICA_WAIT_TIMEOUT, WAIT_REPLICAS


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register the Redis broker as ``redis``, picked by ``redis://``, ``rediss://``, ``unix://`` and the
    Sentinel URLs ``redis+sentinel://`` and ``rediss+sentinel://``, and the Redis Cluster URLs
    ``redis+cluster://`` and ``rediss+cluster://``."""
    registry.add_broker("redis", RedisBroker, schemes=("redis", "rediss", "unix", "redis+sentinel",
                                                       "rediss+sentinel", "redis+cluster", "rediss+cluster"))


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare ``wait_replicas`` and ``replica_wait_timeout`` (Redis ``WAIT`` after an enqueue), and
    ``key_layout`` (keys.py)."""
    settings.add(WAIT_REPLICAS, REPLICA_WAIT_TIMEOUT, KEY_LAYOUT)
