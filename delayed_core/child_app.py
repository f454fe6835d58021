"""Rebuilding, in a fresh interpreter, the app a worker runs its tasks with.

An executor that spawns interpreters (``subprocess``) cannot copy the worker's memory, as ``fork`` does.
The worker describes its app in a :class:`ChildSetup`: its effective settings, the modules whose
functions it may run and the functions registered one by one. The child builds a ``Delayed`` app from
it the way every process does (:func:`~delayed_core.plugins.make_plugin_manager`, then
``delayed_app_created``), so a plugin that registers another plugin object in ``delayed_app_created``
has that object in the child too, where it gets ``delayed_executor_child_started``.

Plugin *objects* handed to the worker's ``Delayed(plugins=[...])`` cannot cross a process boundary;
their settings are dropped in the child.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import PLUGINS, Config, load_config, settings_of
from .config_file import ConfigFile
from .errors import ConfigError
from .plugins import make_plugin_manager
from .settings import checked

if TYPE_CHECKING:
    from .app import Delayed
    from .functions import FunctionRegistry

logger = logging.getLogger("delayed.executor")


@dataclass(frozen=True)
class ChildSetup:
    """What a child interpreter needs to build the worker's app (msgpack-able: see :meth:`to_message`).

    :param settings: the worker's effective settings (name -> value), ``plugins`` included.
    :param imports: modules whose public functions may run (those of the app and of the worker).
    :param functions: functions registered one by one: path -> importable ``"module:qualname"``.
    """

    settings: Mapping[str, Any]
    imports: tuple[str, ...] = ()
    functions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: Config, functions: FunctionRegistry) -> ChildSetup:
        """The setup of a worker with this configuration and these functions."""
        return cls(dict(config.values), tuple(functions.modules), functions.locations())

    def to_message(self) -> dict[str, Any]:
        """As plain data, to send to the child."""
        return {"settings": dict(self.settings), "imports": list(self.imports), "functions": dict(self.functions)}

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> ChildSetup:
        """Back from :meth:`to_message`."""
        return cls(dict(message["settings"]), tuple(message["imports"]), dict(message["functions"]))

    def build_app(self) -> Delayed:
        """The worker's app, rebuilt here: same plugin modules, settings and allowed functions.

        A registered function that cannot be imported here is left out with a warning (a task naming it
        then fails in the child without retry); a module in ``imports`` that cannot be imported is a
        ConfigError, as in the worker.
        """
        from .app import Delayed

        modules = checked(PLUGINS, self.settings.get(PLUGINS.name, []), "the worker's plugins")
        known = settings_of(make_plugin_manager(modules))
        # The worker's values were checked there; settings of plugins that do not exist here are dropped.
        values = {name: value for name, value in self.settings.items() if name in known}
        app = Delayed(config=load_config(values, env={}, config_file=ConfigFile(), settings=known))
        for module_name in self.imports:
            if module_name not in app.functions.modules:
                app.functions.allow_module(module_name)
        for path, location in self.functions.items():
            try:
                app.functions.register_location(path, location)
            except ConfigError as exc:
                logger.warning("%s; this child cannot run it", exc)
        return app
