"""The plugin manager: built-in plugins by module name, third-party ones from entry points.

Environment switches:

- ``DELAYED_DISABLE_PLUGINS=name,name``: do not load these plugins (built-in module names or entry-point
  names).
- ``DELAYED_TRACE_HOOKS=1``: log every hook call and its result (debugging plugins).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence

import pluggy

from . import hookspecs
from .errors import ConfigError
from .markers import PROJECT_NAME

logger = logging.getLogger("delayed.plugins")

#: The default plugins, loaded by module name. Order does not matter: decisions made by defaults are
#: ``trylast`` so any user plugin wins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "delayed_redis.plugin",
    "delayed_plugins.msgpack_serializer",
    "delayed_plugins.memory_broker",
    "delayed_plugins.executors.plugin",
    "delayed_plugins.retry_policy",
    "delayed_plugins.worker_details",
    "delayed_plugins.results",
    "delayed_plugins.periodic",
)

#: Plugins shipped with pydelayed that are loaded only on request: an unknown setting that one of them
#: declares gets a hint to load it (``metrics_port`` without the metrics plugin).
OPTIONAL_PLUGINS: tuple[str, ...] = (
    "delayed_plugins.metrics",
    "delayed_plugins.retry",
    "delayed_plugins.otel",
)


def _disabled() -> set[str]:
    raw = os.environ.get("DELAYED_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def make_plugin_manager(extra_plugins: Iterable[object | str] = (), load_entry_points: bool = True) -> (
    pluggy.PluginManager
):
    """Create a plugin manager with the built-ins, third-party entry points and ``extra_plugins``.

    :param extra_plugins: plugin objects or module names to register as well (``plugins`` setting).
    :param load_entry_points: load the ``delayed`` entry-point group (off in some tests).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    disabled = _disabled()
    for module_name in BUILTIN_PLUGINS:
        if module_name not in disabled:
            pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        for name in disabled:
            pm.set_blocked(name)
        pm.load_setuptools_entrypoints(PROJECT_NAME)
    for plugin in extra_plugins:
        if isinstance(plugin, str):
            if plugin in disabled:
                continue
            try:
                module = importlib.import_module(plugin)
            except ImportError as exc:
                raise ConfigError(f"cannot import plugin {plugin!r}: {exc}") from None
            if pm.get_plugin(plugin) is None:
                pm.register(module, name=plugin)
        elif not pm.is_registered(plugin):
            pm.register(plugin)
    try:
        # A misspelt hook name in a plugin fails here, at start-up, not silently never firing.
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(str(exc)) from None
    if os.environ.get("DELAYED_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda message: logger.info("hook: %s", message.rstrip()))
        pm.enable_tracing()
    return pm


def _key(plugins: Sequence[object | str], load_entry_points: bool) -> tuple[object, ...]:
    """What a plugin manager was built from: module names by value, plugin objects by identity."""
    return (load_entry_points, *(plugin if isinstance(plugin, str) else id(plugin) for plugin in plugins))


class PluginHandoff:
    """A plugin manager built to resolve a configuration, kept for the one app made from it.

    Resolving a config needs the plugins (they declare settings) and so does the app; building the
    manager twice meant importing and registering every plugin and scanning the installed distributions'
    entry points twice per command. The first app asking with the same plugins takes this one; any later
    app gets a fresh manager, so two apps never share plugin state.
    """

    def __init__(self, plugins: Sequence[object | str], load_entry_points: bool) -> None:
        self._plugins = list(plugins)  # holds the objects, so their ids stay theirs
        self._key = _key(self._plugins, load_entry_points)
        self._lock = threading.Lock()
        self._manager: pluggy.PluginManager | None = make_plugin_manager(self._plugins, load_entry_points)
        #: the manager, for reading (``delayed_add_settings``); :meth:`take` hands it over
        self.manager: pluggy.PluginManager = self._manager

    def take(self, plugins: Sequence[object | str], load_entry_points: bool) -> pluggy.PluginManager:
        """This manager if it was built from the same plugins and nobody took it yet, else a new one."""
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is not None and _key(plugins, load_entry_points) == self._key:
            return manager
        return make_plugin_manager(plugins, load_entry_points)
