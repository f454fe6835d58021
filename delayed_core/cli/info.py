"""``delayed info``: what is in the queues, who holds what, which workers are alive."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..app import Delayed
from ..errors import TaskDecodeError
from ..interfaces import QueueInfo
from .common import add_broker_flag, build_app, build_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``info`` subcommand."""
    parser = subparsers.add_parser("info", help="show queue lengths, held tasks and live workers",
                                   description="Show queue lengths, tasks being processed and by whom, "
                                               "live workers and dead letters.")
    add_broker_flag(parser)
    parser.add_argument("--queue", dest="queues", action="append", metavar="NAME",
                        help="queue to show (repeatable; default: every queue found in the broker, else "
                             "the 'queue' setting's)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(run=run)


def describe_task(app: Delayed, raw: bytes) -> str:
    """``func_path`` of a task, or a note when it cannot be decoded."""
    try:
        return app.serializer.loads(raw).func_path
    except TaskDecodeError as exc:
        return f"<undecodable: {exc}>"


def as_dict(app: Delayed, info: QueueInfo) -> dict[str, Any]:
    """The JSON shape of one queue's info."""
    return {
        "queue": info.name,
        "length": info.length,
        "notifications": info.notifications,
        "scheduled": info.scheduled,
        "dead": info.dead,
        "processing": [
            {"worker": worker_id, "alive": alive, "task": describe_task(app, raw)}
            for worker_id, (raw, alive) in sorted(info.processing.items())
        ],
        "workers": sorted(info.workers),
    }


def run(args: argparse.Namespace) -> int:
    """Print one block (or one JSON object) per queue."""
    config = build_config(args, ())
    app = build_app(config)
    queues = args.queues
    if not queues:
        discover = getattr(app.broker(config["queue"]), "discover_queues", None)
        # An empty queue leaves no keys to discover: show the configured one rather than nothing.
        queues = (discover() if discover else []) or [config["queue"]]
    report = [as_dict(app, app.broker(name).info()) for name in sorted(queues)]
    if args.json:
        print(json.dumps({"broker": config.redacted_broker_url, "queues": report}, indent=2))
        return 0
    if not report:
        print(f"no queues found at {config.redacted_broker_url}")
    for queue in report:
        print(f"queue {queue['queue']}: {queue['length']} waiting, {queue['scheduled']} scheduled, "
              f"{len(queue['processing'])} processing, {queue['dead']} dead, "
              f"{len(queue['workers'])} live worker(s) (notifications: {queue['notifications']})")
        for held in queue["processing"]:
            state = "alive" if held["alive"] else "DEAD: the sweeper will requeue it"
            print(f"  {held['worker']} ({state}) runs {held['task']}")
    return 0
