"""``delayed periodic list``: each periodic schedule, its next run, its last run and how that ended.

It reads the records the worker and sweeper processes keep in the broker, so it needs no ``--import``:
a schedule appears once some process that knows it has started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

from ..errors import ConfigError
from ..interfaces import PeriodicStore
from .common import ArgumentParser, add_broker_flag, build_app, build_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``periodic`` subcommand and its ``list`` action."""
    parser = subparsers.add_parser("periodic", help="list periodic tasks: schedule, next run, last run",
                                   description="Show periodic schedules as the processes running them "
                                               "recorded them in the broker.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=ArgumentParser)
    actions.required = True
    listing = actions.add_parser("list", help="list each schedule, its next run, last run and outcome",
                                 description="List each periodic schedule, its next run, its last run and "
                                             "the outcome of that run.")
    add_broker_flag(listing)
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(run=run)


def _when(value: str | None, now: float) -> str:
    if not value:
        return "-"
    t = float(value)
    stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = t - now
    return f"{stamp} (in {delta:.0f}s)" if delta >= 0 else f"{stamp} ({-delta:.0f}s ago)"


def as_dict(name: str, record: dict[str, str]) -> dict[str, Any]:
    """The JSON shape of one schedule (times are unix seconds, or None)."""
    def number(field: str) -> float | None:
        return float(record[field]) if record.get(field) else None

    return {"name": name, "schedule": record.get("schedule", ""), "queue": record.get("queue", ""),
            "missed": record.get("missed", ""), "next_run": number("next_run"),
            "last_enqueued_tick": number("last_enqueued_tick"), "last_run_tick": number("last_run_tick"),
            "finished_at": number("finished_at"), "outcome": record.get("outcome"),
            "enqueued": int(record.get("enqueued", "0"))}


def run(args: argparse.Namespace) -> int:
    """Print one block (or one JSON object) per schedule."""
    config = build_config(args, ())
    app = build_app(config)
    store = app.broker(config["queue"])
    if not isinstance(store, PeriodicStore):
        raise ConfigError(f"the {type(store).__name__} broker keeps no periodic schedules")
    report = [as_dict(name, record) for name, record in store.periodic_records().items()]
    if args.json:
        print(json.dumps({"broker": config.redacted_broker_url, "periodic": report}, indent=2))
        return 0
    if not report:
        print(f"no periodic schedules recorded at {config.redacted_broker_url} (they appear once a worker "
              "or sweeper that knows them has started)")
    now = time.time()
    for item in report:
        next_run = _when(str(item["next_run"] or ""), now)
        if item["next_run"] is not None and item["next_run"] < now - 60:
            next_run += " OVERDUE: is any worker or sweeper that knows it running?"
        print(f"{item['name']}: {item['schedule']} -> queue {item['queue']} (missed ticks: {item['missed']})")
        print(f"  next run:  {next_run}")
        print(f"  last run:  {_when(str(item['last_enqueued_tick'] or ''), now)}, "
              f"{item['enqueued']} enqueued in all")
        outcome = item["outcome"] or "not finished yet"
        print(f"  outcome:   {outcome} (tick {_when(str(item['last_run_tick'] or ''), now)})")
    return 0
