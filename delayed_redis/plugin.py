"""The Redis plugin: registers the ``redis`` broker with its URL schemes, and declares its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from delayed_core import hookimpl
from delayed_core.registry import ComponentRegistry
from delayed_core.settings import SettingsRegistry

from .broker import RedisBroker
from .keys import KEY_LAYOUT
from .replicas import REPLICA_WAIT_TIMEOUT, WAIT_REPLICAS

if TYPE_CHECKING:
    from delayed_core.app import Delayed
    from delayed_core.doctor import DoctorRequest, Finding


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


@hookimpl
def delayed_doctor_checks(app: Delayed, request: DoctorRequest) -> list[Finding] | None:
    """The Redis checks of ``delayed doctor``; their module is imported only by that command."""
    from . import doctor

    return doctor.redis_checks(app, request)
