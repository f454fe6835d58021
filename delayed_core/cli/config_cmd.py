"""``delayed config``: print the effective configuration and where each value came from.

The core's settings come first, then each loaded plugin's under its name: a plugin's settings appear
when the plugin is loaded (``metrics_port`` with ``delayed_plugins.metrics``). Passwords in the broker URL
are hidden. A setting of one executor (child recycling: ``subprocess``) is marked as not in effect under
another executor, with the reason.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from ..config import Config, load_config
from ..redact import redact_url
from ..settings import CORE, Setting


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``config`` subcommand."""
    parser = subparsers.add_parser("config", help="print the effective configuration and its sources",
                                   description="Print every setting, its effective value and where it came "
                                               "from (argument, env DELAYED_*, config file, default): the "
                                               "core's, then each loaded plugin's under its name; settings "
                                               "that do nothing here are marked 'not in effect'.")
    parser.add_argument("--queue", metavar="NAME", help="apply this queue's [queues.NAME] overrides")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Row:
    """One setting as shown."""

    name: str
    value: Any
    source: str
    plugin: str  # empty for the core's
    not_in_effect: str | None


def not_in_effect(config: Config, setting: Setting[Any]) -> str | None:
    """Why ``setting`` does nothing with ``config``, or None when it takes effect."""
    if setting.executor and config["executor"] != setting.executor:
        return f"only the {setting.executor} executor uses it; the executor is {config['executor']}"
    return None


def rows(config: Config) -> list[Row]:
    """Every known setting: the core's first, then the plugins' in the order they declared them."""
    result = []
    for setting in config.settings:
        value = config.values[setting.name]
        if setting.name == "broker_url":
            value = redact_url(value)
        result.append(Row(setting.name, value, config.sources[setting.name], config.settings.owner(setting.name),
                          not_in_effect(config, setting)))
    return sorted(result, key=lambda row: row.plugin != CORE)  # stable: the declared order within each


def as_json(shown: list[Row]) -> dict[str, dict[str, Any]]:
    """``{name: {value, source, in_effect[, not_in_effect][, plugin]}}``: one namespace, as the names of
    ``DELAYED_*`` variables are, so scripts read ``.slots.value`` whoever declared the setting."""
    result: dict[str, dict[str, Any]] = {}
    for row in shown:
        entry: dict[str, Any] = {"value": row.value, "source": row.source, "in_effect": row.not_in_effect is None}
        if row.not_in_effect:
            entry["not_in_effect"] = row.not_in_effect
        if row.plugin:
            entry["plugin"] = row.plugin
        result[row.name] = entry
    return result


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    config = load_config()
    if args.queue:
        config = config.for_queue(args.queue)
    shown = rows(config)
    if args.json:
        print(json.dumps(as_json(shown), indent=2))
        return 0
    width = max(len(row.name) for row in shown)
    plugin = CORE
    for row in shown:
        if row.plugin != plugin:
            plugin = row.plugin
            print(f"[plugin {plugin}]")
        text = ",".join(row.value) if isinstance(row.value, list) else str(row.value)
        note = f"  not in effect: {row.not_in_effect}" if row.not_in_effect else ""
        print(f"{row.name:<{width}}  {text:<28} ({row.source}){note}")
    return 0
