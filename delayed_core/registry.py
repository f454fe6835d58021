"""Name -> component class tables for brokers, serializers and executors, and URL scheme -> broker.

Plugins fill the registry from ``delayed_register_components``. Configuration then picks components by
name; an unknown name fails at start-up with the valid names and a "did you mean". A dotted path
``"pkg.mod:Class"`` is accepted too, and checked to really implement the interface.

A plugin may register a component by such a path instead of by class: its module is then imported when
the component is first picked, so that a process that never picks it (``delayed info`` and the fork
executor) does not pay for importing it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError
from .interfaces import Broker, Executor, Serializer

KINDS: dict[str, type] = {
    "broker": Broker,
    "serializer": Serializer,
    "executor": Executor,
}


def did_you_mean(name: str, choices: list[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix when ``name`` is close to one of ``choices``, else ``""``."""
    import difflib  # here: only a start-up that is failing needs it

    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ComponentRegistry:
    """Holds the component classes plugins registered, by kind and name."""

    def __init__(self) -> None:
        #: kind -> name -> the class, or the ``"pkg.mod:Class"`` path it is imported from when first picked
        self._tables: dict[str, dict[str, type | str]] = {kind: {} for kind in KINDS}
        self._schemes: dict[str, str] = {}

    def add(self, kind: str, name: str, cls: type | str) -> None:
        """Register ``cls`` as the ``kind`` component called ``name``; later registrations win.

        ``cls`` may be a ``"pkg.mod:Class"`` path: the class is imported, and checked to implement the
        interface, when the component is first picked (:meth:`get`).
        """
        base = KINDS[kind]
        if isinstance(cls, str):
            if ":" not in cls:
                raise TypeError(f"{cls!r} is not a 'module:Class' path")
        elif not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
        self._tables[kind][name] = cls

    def add_broker(self, name: str, cls: type[Broker] | str, schemes: tuple[str, ...] = ()) -> None:
        """Register a broker class, and the URL schemes (``"redis"`` for ``redis://...``) that pick it
        when the ``broker`` setting is empty."""
        self.add("broker", name, cls)
        for scheme in schemes:
            self._schemes[scheme] = name

    def broker_for_scheme(self, scheme: str) -> str | None:
        """The broker name registered for a URL scheme, or None."""
        return self._schemes.get(scheme)

    def schemes(self) -> list[str]:
        """Every registered URL scheme, sorted."""
        return sorted(self._schemes)

    def add_serializer(self, name: str, cls: type[Serializer] | str) -> None:
        """Register a serializer class."""
        self.add("serializer", name, cls)

    def add_executor(self, name: str, cls: type[Executor] | str) -> None:
        """Register an executor class."""
        self.add("executor", name, cls)

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._tables[kind])

    def get(self, kind: str, name: str) -> type[Any]:
        """The class registered as ``name``, or loaded from ``"pkg.mod:Class"``; ConfigError otherwise."""
        table = self._tables[kind]
        if name in table:
            entry = table[name]
            if isinstance(entry, str):
                entry = table[name] = self._load_dotted(kind, entry)
            return entry
        if ":" in name:
            return self._load_dotted(kind, name)
        valid = ", ".join(self.names(kind)) or "none registered"
        raise ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, self.names(kind))}; valid: {valid}")

    def check(self, kind: str, name: str) -> None:
        """ConfigError unless :meth:`get` can give ``name``; a component registered by path is not
        imported for this (a dotted ``name`` is)."""
        if name not in self._tables[kind]:
            self.get(kind, name)

    def _load_dotted(self, kind: str, path: str) -> type[Any]:
        module_name, _, attr = path.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load {kind} {path!r}: {exc}") from None
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"{path!r} is not a {base.__name__} (it must subclass {base.__qualname__})")
        return cls
