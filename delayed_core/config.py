"""Configuration: one frozen :class:`Config`, resolved once at start-up, with where each value came from.

Precedence, highest first:

1. explicit values: keyword arguments to ``Delayed(...)`` or command-line flags;
2. environment variables ``DELAYED_<NAME>`` (``DELAYED_BROKER_URL``, ``DELAYED_SLOTS`` ...);
3. the config file: ``$DELAYED_CONFIG``, else ``delayed.toml`` in the working directory (top-level keys),
   else ``[tool.delayed]`` in ``pyproject.toml``;
4. built-in defaults.

Per-queue overrides live in the file under ``[queues.<name>]`` (``[tool.delayed.queues.<name>]`` in
pyproject) and apply on top of everything else for that queue, except explicit values.

The core declares its settings here; a plugin declares its own in ``delayed_add_settings`` (see
:mod:`delayed_core.settings`). So the ``plugins`` setting is read first, the plugins are loaded, and only
then is every key checked: an unknown key, a bad value or a wrong type fails at start-up with a one-line
:class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .config_file import ConfigFile, find_config_file
from .errors import ConfigError
from .plugins import OPTIONAL_PLUGINS, PluginHandoff
from .redact import redact_url
from .registry import did_you_mean
from .settings import Setting, SettingsRegistry, checked, not_negative, positive

if TYPE_CHECKING:
    import pluggy

T = TypeVar("T")


def _log_level(value: Any) -> str | None:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    return None if str(value).upper() in levels else f"must be one of {', '.join(levels)}"


#: the most tasks one slot may prefetch: every one of them needs its own worker id and keep-alive
MAX_PREFETCH = 1000


def _prefetch(value: Any) -> str | None:
    return None if 1 <= value <= MAX_PREFETCH else f"must be between 1 and {MAX_PREFETCH}"


def _log_format(value: Any) -> str | None:
    return None if value in ("text", "json") else "must be text or json"


#: the modules of the plugins to load: read before every other setting, which plugins may declare
PLUGINS: Setting[list[str]] = Setting("plugins", list, [], "extra plugin modules to load")

#: The core's settings. Plugins declare theirs in ``delayed_add_settings`` (retry backoff, child
#: recycling, the metrics port ...); ``delayed config`` lists them under their plugin.
CORE_SETTINGS: tuple[Setting[Any], ...] = (
    Setting("broker_url", str, "redis://localhost:6379/0",
            "where the broker is (the default plugin, Redis: redis://, rediss://, unix://, redis+sentinel://)"),
    Setting("broker", str, "", "broker component name; empty picks it from the URL scheme"),
    Setting("serializer", str, "msgpack", "serializer component name"),
    Setting("executor", str, "thread", "where tasks run: thread, fork, subprocess or asyncio", per_queue=True),
    Setting("queue", str, "default", "queue a worker serves by default"),
    Setting("slots", int, 1, "tasks a worker process runs at once", positive, per_queue=True),
    Setting("prefetch", int, 1, "tasks a slot takes and settles per broker call (docs/scaling.md#prefetch)",
            _prefetch, per_queue=True),
    Setting("imports", list, [], "modules whose functions workers may run"),
    Setting("allow_any_import", bool, False, "UNSAFE: let tasks name any importable function"),
    Setting("timeout", float, 0.0, "seconds a task may run; 0 means no limit", not_negative, per_queue=True),
    Setting("keep_alive_timeout", float, 15.0, "seconds a silent worker counts as alive", positive),
    Setting("keep_alive_interval", float, 3.0, "seconds between keep-alive refreshes", positive),
    Setting("dequeue_timeout", float, 5.0, "seconds an idle slot blocks on the queue per call", positive),
    Setting("shutdown_timeout", float, 30.0, "seconds running tasks get to finish at stop", not_negative),
    Setting("sweeper_interval", float, 60.0, "seconds between two sweeps", positive),
    Setting(
        "max_recoveries", int, 5, "recover a task at most this many times from workers that stopped holding it, then "
        "dead-letter it; 0 = no limit",
        not_negative, per_queue=True,
    ),
    Setting("max_length", int, 0, "tasks a queue may hold before enqueue raises QueueFull; 0 = unbounded",
            not_negative, per_queue=True),
    Setting("dead_letter_max", int, 10000, "newest dead letters kept per queue", positive, per_queue=True),
    Setting("dead_letter_failed", bool, True, "keep failed tasks as dead letters", per_queue=True),
    PLUGINS,
    Setting("log_level", str, "INFO", "logging level", _log_level),
    Setting("log_format", str, "text", "log lines: text, or json (one JSON object per line)", _log_format),
)

#: DELAYED_* variables that are not settings but switches read elsewhere
ENV_SWITCHES = frozenset({"DELAYED_CONFIG", "DELAYED_DISABLE_PLUGINS", "DELAYED_TRACE_HOOKS",
                          # set by `delayed worker --processes N` in its worker processes (supervisor.py)
                          "DELAYED_SUPERVISED",
                          # the crash-point harness (delayed_core/testing/crashpoint_plugin.py)
                          "DELAYED_CRASHPOINT", "DELAYED_CRASHPOINT_MODE", "DELAYED_CRASHPOINT_AFTER",
                          "DELAYED_CRASHPOINT_PID"})
DEFAULT = "default"


def _plugin_label(plugin: object) -> str:
    """How ``delayed config`` names a plugin: its module, or its class for a plugin object."""
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def settings_of(plugin_manager: pluggy.PluginManager) -> SettingsRegistry:
    """The core's settings plus every setting the manager's plugins declare in ``delayed_add_settings``.

    Each implementation is called on its own, so that the registry knows which plugin declared what.
    """
    registry = SettingsRegistry(CORE_SETTINGS)
    for impl in plugin_manager.hook.delayed_add_settings.get_hookimpls():
        label = _plugin_label(impl.plugin)
        with registry.declared_by(label):
            try:
                impl.function(settings=registry)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"plugin {label}: delayed_add_settings failed: {type(exc).__name__}: {exc}") from exc
    return registry


def _owned_elsewhere(key: str) -> str:
    """A hint when ``key`` belongs to a shipped plugin that is not loaded (``metrics_port`` without the
    metrics plugin); empty otherwise. Only runs on the way to an error, so importing is fine."""
    for module_name in OPTIONAL_PLUGINS:
        try:
            hook = getattr(importlib.import_module(module_name), "delayed_add_settings", None)
            if hook is None:
                continue
            scratch = SettingsRegistry()
            hook(settings=scratch)
        except Exception:  # its extra is not installed, or it fails: no hint from it
            continue
        if key in scratch:
            return f" (it is a setting of the plugin {module_name}, which is not loaded: add it to 'plugins')"
    return ""


def _unknown(key: str, origin: str, settings: SettingsRegistry) -> ConfigError:
    hint = did_you_mean(key, settings.names()) or _owned_elsewhere(key)
    return ConfigError(f"{origin}: unknown setting {key!r}{hint}")


@dataclass(frozen=True)
class Config:
    """The effective settings. Build it with :func:`load_config`; read the core's settings as
    ``config["slots"]`` and a plugin's with its typed accessor, ``config.get(SETTING)``."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()
    file_label: str = "file"
    #: every setting known when this config was resolved: the core's and the loaded plugins'
    settings: SettingsRegistry = field(default_factory=lambda: SettingsRegistry(CORE_SETTINGS))
    #: the plugin manager the settings were collected from, for the app built on this config
    plugins_handoff: PluginHandoff | None = field(default=None, compare=False, repr=False)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, setting: Setting[T]) -> T:
        """The value of ``setting``, typed (``config.get(METRICS_PORT)`` is an ``int``).

        A setting this config was resolved without (its plugin was registered later, as an object) has
        its default: nothing can have set it, since an unknown key fails the resolution.
        """
        return self.values.get(setting.name, setting.default)  # type: ignore[no-any-return]

    # Typed accessors for the settings the core reads on hot or central paths.
    @property
    def broker_url(self) -> str:
        """The broker URL."""
        return self.values["broker_url"]

    @property
    def redacted_broker_url(self) -> str:
        """The broker URL with its password (``user:pass@`` or ``?password=``) replaced by ``***``, for
        logs and command output."""
        return redact_url(self.broker_url)

    def for_queue(self, queue: str) -> Config:
        """This config with ``[queues.<queue>]`` applied (explicit values still win)."""
        overrides = {k: v for k, v in self.queues.get(queue, {}).items() if k not in self.explicit}
        if not overrides:
            return self
        values = dict(self.values)
        values.update(overrides)
        sources = dict(self.sources)
        sources.update({key: f"{self.file_label} [queues.{queue}]" for key in overrides})
        config = dataclasses.replace(self, values=values, sources=sources)
        config.validate()
        return config

    def validate(self) -> None:
        """Checks that involve several settings."""
        interval, timeout = self.values["keep_alive_interval"], self.values["keep_alive_timeout"]
        if interval * 2 > timeout:
            raise ConfigError(
                f"keep_alive_interval ({interval:g}s) must be at most half of keep_alive_timeout "
                f"({timeout:g}s), or a worker may look dead between two refreshes"
            )


def plugin_modules(overrides: Mapping[str, Any], env: Mapping[str, str], config_file: ConfigFile) -> list[str]:
    """The ``plugins`` setting, read before the others: the plugins it names may declare settings."""
    if overrides.get("plugins") is not None:
        return checked(PLUGINS, overrides["plugins"], "plugins")
    if PLUGINS.env_name in env:
        return checked(PLUGINS, env[PLUGINS.env_name], PLUGINS.env_name)
    if "plugins" in config_file.values:
        return checked(PLUGINS, config_file.values["plugins"], config_file.origin)
    return []


def load_config(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: ConfigFile | None = None,
    *,
    settings: SettingsRegistry | None = None,
    plugins: Iterable[object | str] = (),
    load_entry_points: bool = True,
) -> Config:
    """Resolve the effective configuration.

    Order: the ``plugins`` setting is read first; the plugin manager built from it (with ``plugins`` and
    the entry points) says which settings exist (``delayed_add_settings``); then every value of every
    source is checked against that table, so an unknown key fails with a "did you mean".

    :param overrides: explicit values (keyword arguments, CLI flags); None values are ignored.
    :param env: the environment (defaults to ``os.environ``).
    :param config_file: a parsed file; found with :func:`find_config_file` when None.
    :param settings: the known settings; when None, collected from the plugins as described above.
    :param plugins: plugin objects or module names loaded besides the ``plugins`` setting.
    :param load_entry_points: whether third-party plugins from entry points count.
    """
    env = os.environ if env is None else env
    config_file = find_config_file(env=env) if config_file is None else config_file
    explicit_values = {key: value for key, value in (overrides or {}).items() if value is not None}
    handoff = None
    if settings is None:
        modules = plugin_modules(explicit_values, env, config_file)
        handoff = PluginHandoff([*modules, *plugins], load_entry_points)
        settings = settings_of(handoff.manager)
    values = {setting.name: setting.default for setting in settings}
    sources = {setting.name: DEFAULT for setting in settings}
    for key, value in config_file.values.items():
        values[key] = _checked(settings, key, value, config_file.origin)
        sources[key] = config_file.label
    queues = {queue: _queue_table(settings, config_file.origin, queue, table)
              for queue, table in config_file.queues.items()}
    for env_name in env:
        if env_name.startswith("DELAYED_") and env_name not in ENV_SWITCHES:
            key = env_name[len("DELAYED_"):].lower()
            values[key] = _checked(settings, key, env[env_name], f"environment variable {env_name}", env_name)
            sources[key] = f"env {env_name}"
    for key, value in explicit_values.items():
        values[key] = _checked(settings, key, value, "argument", key)
        sources[key] = "argument"
    config = Config(values, sources, queues, frozenset(explicit_values), config_file.label, settings, handoff)
    config.validate()
    return config


def _checked(settings: SettingsRegistry, key: str, value: Any, origin: str, value_origin: str = "") -> Any:
    """``value`` checked as setting ``key``; ``origin`` names the source in an unknown-key error and
    ``value_origin`` (default: the same) in a bad-value error."""
    setting = settings.get(key)
    if setting is None:
        raise _unknown(key, origin, settings)
    return checked(setting, value, value_origin or origin)


def _queue_table(settings: SettingsRegistry, origin: str, queue: str, table: Mapping[str, Any]) -> dict[str, Any]:
    where = f"{origin} [queues.{queue}]"
    result = {}
    for key, value in table.items():
        setting = settings.get(key)
        if setting is None:
            raise _unknown(key, where, settings)
        if not setting.per_queue:
            per_queue = ", ".join(s.name for s in settings if s.per_queue)
            raise ConfigError(f"{where}: {key} cannot be set per queue (per-queue settings: {per_queue})")
        result[key] = checked(setting, value, where)
    return result

