"""``delayed config``: print the effective configuration and where each value came from.

Passwords in the broker URL are hidden. A setting that does nothing with this configuration (the
metrics port without the metrics plugin, child recycling without the subprocess executor) is marked as
not in effect, with the reason.
"""

from __future__ import annotations

import argparse
import json
import types
from collections.abc import Collection

from ..config import SETTINGS, Config, Setting, load_config
from ..plugins import make_plugin_manager
from ..redact import redact_url


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``config`` subcommand."""
    parser = subparsers.add_parser("config", help="print the effective configuration and its sources",
                                   description="Print every setting, its effective value and where it came "
                                               "from (argument, env DELAYED_*, config file, default); "
                                               "settings that do nothing here are marked 'not in effect'.")
    parser.add_argument("--queue", metavar="NAME", help="apply this queue's [queues.NAME] overrides")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def plugin_modules(config: Config) -> set[str]:
    """The modules of the plugins a worker with this configuration loads (built-ins, entry points, extras)."""
    manager = make_plugin_manager(config["plugins"])
    return {plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
            for plugin in manager.get_plugins()}


def not_in_effect(config: Config, setting: Setting, plugin_modules: Collection[str]) -> str | None:
    """Why ``setting`` does nothing with ``config``, or None when it takes effect (see ``Setting.needs``)."""
    kind, _, name = setting.needs.partition(":")
    if kind == "executor" and config["executor"] != name:
        return f"only the {name} executor uses it; the executor is {config['executor']}"
    if kind == "plugin" and name not in plugin_modules:
        return f"only the {name} plugin uses it, and it is not loaded (add it to 'plugins')"
    return None


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    config = load_config()
    if args.queue:
        config = config.for_queue(args.queue)
    modules = plugin_modules(config)
    rows = []
    for setting in SETTINGS:
        value = config[setting.name]
        if setting.name == "broker_url":
            value = redact_url(value)
        rows.append((setting.name, value, config.sources[setting.name], not_in_effect(config, setting, modules)))
    if args.json:
        shown = {}
        for name, value, source, inactive in rows:
            shown[name] = {"value": value, "source": source, "in_effect": inactive is None}
            if inactive:
                shown[name]["not_in_effect"] = inactive
        print(json.dumps(shown, indent=2))
        return 0
    width = max(len(name) for name, *_ in rows)
    for name, value, source, inactive in rows:
        text = ",".join(value) if isinstance(value, list) else str(value)
        note = f"  not in effect: {inactive}" if inactive else ""
        print(f"{name:<{width}}  {text:<28} ({source}){note}")
    return 0
