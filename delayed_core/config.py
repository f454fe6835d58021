"""Configuration: one frozen :class:`Config`, resolved once at start-up, with where each value came from.

Precedence, highest first:

1. explicit values: keyword arguments to ``Delayed(...)`` or command-line flags;
2. environment variables ``DELAYED_<NAME>`` (``DELAYED_BROKER_URL``, ``DELAYED_SLOTS`` ...);
3. the config file: ``$DELAYED_CONFIG``, else ``delayed.toml`` in the working directory (top-level keys),
   else ``[tool.delayed]`` in ``pyproject.toml``;
4. built-in defaults.

Per-queue overrides live in the file under ``[queues.<name>]`` (``[tool.delayed.queues.<name>]`` in
pyproject) and apply on top of everything else for that queue, except explicit values.

An unknown key, a bad value or a wrong type fails at start-up with a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .redact import redact_url
from .registry import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Setting:
    """One configurable value: its type, default, help line and check."""

    name: str
    kind: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    per_queue: bool = False
    #: what the setting needs to take effect: ``"executor:NAME"`` or ``"plugin:MODULE"``; empty: always
    needs: str = ""


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _log_level(value: Any) -> str | None:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    return None if str(value).upper() in levels else f"must be one of {', '.join(levels)}"


def _log_format(value: Any) -> str | None:
    return None if value in ("text", "json") else "must be text or json"


SETTINGS: tuple[Setting, ...] = (
    Setting("broker_url", str, "redis://localhost:6379/0", "where the broker is: redis://, rediss://, unix://, redis+sentinel://"),
    Setting("broker", str, "", "broker component name; empty picks it from the URL scheme"),
    Setting("serializer", str, "msgpack", "serializer component name"),
    Setting("executor", str, "thread", "where tasks run: thread, fork, subprocess or asyncio", per_queue=True),
    Setting("queue", str, "default", "queue a worker serves by default"),
    Setting("slots", int, 1, "tasks a worker process runs at once", _positive, per_queue=True),
    Setting("imports", list, [], "modules whose functions workers may run"),
    Setting("allow_any_import", bool, False, "UNSAFE: let tasks name any importable function"),
    Setting("timeout", float, 0.0, "seconds a task may run; 0 means no limit", _not_negative, per_queue=True),
    Setting("keep_alive_timeout", float, 60.0, "seconds a silent worker counts as alive", _positive),
    Setting("keep_alive_interval", float, 15.0, "seconds between keep-alive refreshes", _positive),
    Setting("dequeue_timeout", float, 5.0, "seconds an idle slot blocks on the queue per call", _positive),
    Setting("shutdown_timeout", float, 30.0, "seconds running tasks get to finish at stop", _not_negative),
    Setting("sweeper_interval", float, 60.0, "seconds between two sweeps", _positive),
    Setting(
        "max_recoveries", int, 5, "recover a task at most this many times from workers that stopped holding it, then "
        "dead-letter it; 0 = no limit",
        _not_negative, per_queue=True,
    ),
    Setting("dead_letter_max", int, 10000, "newest dead letters kept per queue", _positive, per_queue=True),
    Setting("dead_letter_failed", bool, True, "keep failed tasks as dead letters", per_queue=True),
    Setting("max_tasks_per_child", int, 0, "subprocess executor: restart a child after N tasks; 0 = never",
            _not_negative, per_queue=True, needs="executor:subprocess"),
    Setting("max_memory_per_child", int, 0, "subprocess executor: restart a child above N MiB; 0 = never",
            _not_negative, per_queue=True, needs="executor:subprocess"),
    Setting("retry_backoff", float, 1.0, "retries: first backoff delay in seconds (doubles per attempt)",
            _not_negative,
            per_queue=True),
    Setting("retry_backoff_max", float, 300.0, "retries: longest backoff delay in seconds", _not_negative,
            per_queue=True),
    Setting("retry_jitter", bool, True, "retries: randomise backoff delays to spread retries", per_queue=True),
    Setting("metrics_port", int, 0, "metrics plugin: port of the Prometheus endpoint; 0 = off", _not_negative,
            needs="plugin:delayed_plugins.metrics"),
    Setting("wait_replicas", int, 0, "replicas that must acknowledge an enqueue (Redis WAIT); 0 = off",
            _not_negative),
    Setting("replica_wait_timeout", float, 1.0, "seconds an enqueue waits for its replicas", _positive),
    Setting("plugins", list, [], "extra plugin modules to load"),
    Setting("log_level", str, "INFO", "logging level", _log_level),
    Setting("log_format", str, "text", "log lines: text, or json (one JSON object per line)", _log_format),
)

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
#: DELAYED_* variables that are not settings but switches read elsewhere
ENV_SWITCHES = frozenset({"DELAYED_CONFIG", "DELAYED_DISABLE_PLUGINS", "DELAYED_TRACE_HOOKS",
                          # set by `delayed worker --processes N` in its worker processes (supervisor.py)
                          "DELAYED_SUPERVISED",
                          # the crash-point harness (delayed_core/testing/crashpoint_plugin.py)
                          "DELAYED_CRASHPOINT", "DELAYED_CRASHPOINT_MODE", "DELAYED_CRASHPOINT_AFTER",
                          "DELAYED_CRASHPOINT_PID"})
DEFAULT = "default"


def _convert(setting: Setting, value: Any, origin: str) -> Any:
    """Coerce a value (a TOML value, or a string from the environment) to the setting's type."""
    kind = setting.kind
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind is list:
            if isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
                return list(value)
            raise ValueError
        if isinstance(value, bool):
            raise ValueError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            result = float(value)
            if not math.isfinite(result):
                raise ValueError
            return result
        return str(value)
    except (TypeError, ValueError):
        expected = {bool: "true or false", list: "a list of strings", int: "an integer", float: "a number"}
        raise ConfigError(
            f"{origin}: {setting.name} must be {expected.get(kind, 'a string')}, got {value!r}"
        ) from None


def _check(setting: Setting, value: Any, origin: str) -> Any:
    if setting.check is not None:
        problem = setting.check(value)
        if problem:
            raise ConfigError(f"{origin}: {setting.name} {problem}, got {value!r}")
    return value


def _unknown(key: str, origin: str) -> ConfigError:
    return ConfigError(f"{origin}: unknown setting {key!r}{did_you_mean(key, list(SETTINGS_BY_NAME))}")


@dataclass(frozen=True)
class ConfigFile:
    """Settings read from a file: global values and per-queue tables."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How sources from this file are named in ``delayed config``."""
        return f"file {self.path}" if self.path else "file"


def find_config_file(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> ConfigFile:
    """Locate and parse the config file (see module docstring); an empty ConfigFile if there is none."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    explicit = env.get("DELAYED_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"DELAYED_CONFIG names {explicit!r}, which is not a file")
        return _parse_file(path, _read_toml(path), pyproject=path.name == "pyproject.toml")
    candidate = cwd / "delayed.toml"
    if candidate.is_file():
        return _parse_file(candidate, _read_toml(candidate), pyproject=False)
    candidate = cwd / "pyproject.toml"
    if candidate.is_file():
        return _parse_file(candidate, _read_toml(candidate), pyproject=True)
    return ConfigFile()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _parse_file(path: Path, data: dict[str, Any], pyproject: bool) -> ConfigFile:
    if pyproject:
        data = data.get("tool", {}).get("delayed", {})
    origin = str(path) + (" [tool.delayed]" if pyproject else "")
    values: dict[str, Any] = {}
    queues: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key == "queues":
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: queues must be a table of tables")
            for queue, table in value.items():
                queues[queue] = _parse_queue_table(origin, queue, table)
            continue
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            raise _unknown(key, origin)
        values[key] = _check(setting, _convert(setting, value, origin), origin)
    return ConfigFile(path, values, queues)


def _parse_queue_table(origin: str, queue: str, table: Any) -> dict[str, Any]:
    where = f"{origin} [queues.{queue}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    result = {}
    for key, value in table.items():
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            raise _unknown(key, where)
        if not setting.per_queue:
            per_queue = ", ".join(s.name for s in SETTINGS if s.per_queue)
            raise ConfigError(f"{where}: {key} cannot be set per queue (per-queue settings: {per_queue})")
        result[key] = _check(setting, _convert(setting, value, where), where)
    return result


@dataclass(frozen=True)
class Config:
    """The effective settings. Build it with :func:`load_config`; read values as attributes."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()
    file_label: str = "file"

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

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


def load_config(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: ConfigFile | None = None,
) -> Config:
    """Resolve the effective configuration.

    :param overrides: explicit values (keyword arguments, CLI flags); None values are ignored.
    :param env: the environment (defaults to ``os.environ``).
    :param config_file: a parsed file; found with :func:`find_config_file` when None.
    """
    env = os.environ if env is None else env
    config_file = find_config_file(env=env) if config_file is None else config_file
    values = {setting.name: setting.default for setting in SETTINGS}
    sources = {setting.name: DEFAULT for setting in SETTINGS}
    for key, value in config_file.values.items():
        values[key], sources[key] = value, config_file.label
    for env_name in env:
        if env_name.startswith("DELAYED_") and env_name not in ENV_SWITCHES:
            key = env_name[len("DELAYED_"):].lower()
            if key not in SETTINGS_BY_NAME:
                raise _unknown(key, f"environment variable {env_name}")
    for setting in SETTINGS:
        env_name = "DELAYED_" + setting.name.upper()
        if env_name in env:
            value = _convert(setting, env[env_name], env_name)
            values[setting.name], sources[setting.name] = _check(setting, value, env_name), f"env {env_name}"
    explicit = set()
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            raise _unknown(key, "argument")
        values[key] = _check(setting, _convert(setting, value, key), key)
        sources[key] = "argument"
        explicit.add(key)
    config = Config(values, sources, config_file.queues, frozenset(explicit), config_file.label)
    config.validate()
    return config
