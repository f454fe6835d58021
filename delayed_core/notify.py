"""Firing lifecycle notifications cheaply and safely.

A hook with no implementation costs one set lookup, not a pluggy call: the worker's hot path fires
several notifications per task (dequeued, started, then succeeded or failed, released ...). A
notification that raises is logged and swallowed *with a log line*, so a broken metrics plugin can never
stop a worker.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

from .hookspecs import all_hook_names

logger = logging.getLogger("delayed.hooks")


class Notifier:
    """Calls notification hooks by name, skipping those no plugin implements."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._active: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Re-read which hooks have implementations (after registering a plugin)."""
        self._active = frozenset(
            name for name in all_hook_names() if getattr(self._pm.hook, name).get_hookimpls()
        )

    def has(self, hook_name: str) -> bool:
        """True when some plugin implements ``hook_name``."""
        return hook_name in self._active

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Fire a notification hook; log, never raise, if an implementation fails."""
        if hook_name not in self._active:
            return
        try:
            getattr(self._pm.hook, hook_name)(**kwargs)
        except Exception:
            logger.exception("plugin hook %s failed; the worker carries on", hook_name)

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook whose implementations answer with values; return the non-None answers.

        Like :meth:`emit`, a failing implementation is logged and yields no answers, never an exception.
        """
        if hook_name not in self._active:
            return []
        try:
            return [answer for answer in getattr(self._pm.hook, hook_name)(**kwargs) if answer is not None]
        except Exception:
            logger.exception("plugin hook %s failed; carrying on without its answer", hook_name)
            return []
