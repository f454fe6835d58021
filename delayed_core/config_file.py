"""The config file: ``$DELAYED_CONFIG``, else ``delayed.toml``, else ``[tool.delayed]`` in ``pyproject.toml``.

Read as written; :func:`delayed_core.config.load_config` checks its keys and values once the plugins,
which may declare settings of their own, are known.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class ConfigFile:
    """What a config file holds, as written: global values and per-queue tables. Keys and values are
    checked by :func:`load_config`, once the plugins (which may declare settings) are known."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: str = "file"

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
    # Imported here: a command run where there is no config file parses none.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _parse_file(path: Path, data: dict[str, Any], pyproject: bool) -> ConfigFile:
    if pyproject:
        data = data.get("tool", {}).get("delayed", {})
    origin = str(path) + (" [tool.delayed]" if pyproject else "")
    values = {key: value for key, value in data.items() if key != "queues"}
    tables = data.get("queues", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{origin}: queues must be a table of tables")
    for queue, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{origin} [queues.{queue}]: must be a table")
    return ConfigFile(path, values, tables, origin)
