"""Settings: what one configurable value is, how a raw value becomes a checked one, and the table of every
setting a process knows (the core's and those its plugins declared).

Plugins declare their settings in the ``delayed_add_settings`` hook, the way pytest plugins add options:

.. code-block:: python

    PORT = Setting("metrics_port", int, 0, "port of the Prometheus endpoint; 0 = off", not_negative)

    @hookimpl
    def delayed_add_settings(settings: SettingsRegistry) -> None:
        settings.add(PORT)

and read them back with the typed accessor ``config.get(PORT)`` (an ``int`` here).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: the types a setting may have: what TOML and a ``DELAYED_*`` string can both express
KINDS: tuple[type, ...] = (str, int, float, bool, list)
_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: the owner of the core's own settings
CORE = ""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One configurable value: its type, default, help line and check.

    :param name: the key in the config file and in keyword arguments; ``DELAYED_<NAME>`` in the environment.
    :param kind: ``str``, ``int``, ``float``, ``bool`` or ``list`` (of strings).
    :param check: returns what is wrong with a converted value (``"must be > 0"``), or None.
    :param per_queue: may be set in ``[queues.NAME]`` tables.
    :param executor: the executor that uses it (``"subprocess"``); empty when it applies whatever the
        executor. ``delayed config`` marks it "not in effect" under another executor, and every queue a
        worker serves must agree on it (one process, one executor).
    """

    name: str
    kind: type[T]
    default: T
    help: str
    check: Callable[[T], str | None] | None = None
    per_queue: bool = False
    executor: str = ""

    @property
    def env_name(self) -> str:
        """The environment variable that sets it."""
        return "DELAYED_" + self.name.upper()


def positive(value: Any) -> str | None:
    """A check: the value must be > 0."""
    return None if value > 0 else "must be > 0"


def not_negative(value: Any) -> str | None:
    """A check: the value must be >= 0."""
    return None if value >= 0 else "must be >= 0"


def _convert(setting: Setting[Any], value: Any) -> Any:
    kind = setting.kind
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


def checked(setting: Setting[T], value: Any, origin: str) -> T:
    """``value`` (a TOML value, a ``DELAYED_*`` string, an argument) converted to the setting's type and
    checked; a one-line ConfigError naming ``origin`` otherwise."""
    try:
        result = _convert(setting, value)
    except (TypeError, ValueError):
        expected = {bool: "true or false", list: "a list of strings", int: "an integer", float: "a number"}
        raise ConfigError(
            f"{origin}: {setting.name} must be {expected.get(setting.kind, 'a string')}, got {value!r}"
        ) from None
    if setting.check is not None:
        problem = setting.check(result)
        if problem:
            raise ConfigError(f"{origin}: {setting.name} {problem}, got {value!r}")
    return result


class SettingsRegistry:
    """Every setting a process knows, with the plugin that declared it.

    Plugins receive it in ``delayed_add_settings`` and call :meth:`add`; the core reads it to check
    configuration keys and ``delayed config`` to list the settings under their plugin.
    """

    def __init__(self, core: Iterable[Setting[Any]] = ()) -> None:
        self._settings: dict[str, Setting[Any]] = {}
        self._owners: dict[str, str] = {}
        self._owner = CORE
        self.add(*core)

    def add(self, *settings: Setting[Any]) -> None:
        """Declare settings. Adding the same :class:`Setting` object again is a no-op (two plugins of one
        package may share one); another setting under a taken name is a ConfigError."""
        for setting in settings:
            known = self._settings.get(setting.name)
            if known is setting:
                continue
            where = f"plugin {self._owner}" if self._owner else "the core"
            if known is not None:
                taken_by = f"plugin {self._owners[setting.name]}" if self._owners[setting.name] else "the core"
                raise ConfigError(f"{where} declares setting {setting.name!r}, which {taken_by} declares already")
            if not _NAME.fullmatch(setting.name) or setting.kind not in KINDS:
                raise ConfigError(f"{where} declares setting {setting.name!r} badly: a name needs lowercase "
                                  "letters, digits and _, a kind is str, int, float, bool or list")
            self._settings[setting.name] = setting
            self._owners[setting.name] = self._owner

    @contextlib.contextmanager
    def declared_by(self, owner: str) -> Iterator[SettingsRegistry]:
        """Attribute what is added inside the block to the plugin ``owner``."""
        previous, self._owner = self._owner, owner
        try:
            yield self
        finally:
            self._owner = previous

    def get(self, name: str) -> Setting[Any] | None:
        """The setting called ``name``, or None."""
        return self._settings.get(name)

    def owner(self, name: str) -> str:
        """The plugin that declared ``name``; ``""`` for the core's settings."""
        return self._owners[name]

    def names(self) -> list[str]:
        """Every name, core first, then in the order plugins declared them."""
        return list(self._settings)

    def __iter__(self) -> Iterator[Setting[Any]]:
        return iter(self._settings.values())

    def __contains__(self, name: object) -> bool:
        return name in self._settings

    def __repr__(self) -> str:
        return f"<SettingsRegistry {len(self._settings)} settings>"
