"""``delayed config``: print the effective configuration and where each value came from."""

from __future__ import annotations

import argparse
import json

from ..config import SETTINGS, load_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``config`` subcommand."""
    parser = subparsers.add_parser("config", help="print the effective configuration and its sources",
                                   description="Print every setting, its effective value and where it came "
                                               "from (argument, env DELAYED_*, config file, default).")
    parser.add_argument("--queue", metavar="NAME", help="apply this queue's [queues.NAME] overrides")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    config = load_config()
    if args.queue:
        config = config.for_queue(args.queue)
    rows = [(s.name, config[s.name], config.sources[s.name], s.help) for s in SETTINGS]
    if args.json:
        print(json.dumps({name: {"value": value, "source": source} for name, value, source, _ in rows}, indent=2))
        return 0
    width = max(len(name) for name, *_ in rows)
    for name, value, source, _help in rows:
        shown = ",".join(value) if isinstance(value, list) else value
        print(f"{name:<{width}}  {shown!s:<28} ({source})")
    return 0
