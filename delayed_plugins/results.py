"""Task handles' plugin: declares ``result_ttl`` and ``result_max_bytes`` (see docs/results.md)."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.handles import RESULT_MAX_BYTES, RESULT_TTL
from delayed_core.settings import SettingsRegistry


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare the retention and the size cap of tracked tasks' results."""
    settings.add(RESULT_TTL, RESULT_MAX_BYTES)
