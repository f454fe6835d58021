"""``delayed info``: what is in the queues, who holds what, which workers are alive."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..app import Delayed
from ..errors import TaskDecodeError
from ..interfaces import QueueInfo
from .common import add_queue_command, build_app, build_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``info`` subcommand."""
    parser = add_queue_command(subparsers, "info", "show queue lengths, held tasks and live workers",
                               "Show queue lengths, tasks being processed and by whom, live workers and "
                               "dead letters.",
                               queues="queue to show (repeatable; default: every queue found in the broker, "
                                      "else the 'queue' setting's)")
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
        **info.extra,
        "scheduled": info.scheduled,
        "dead": info.dead,
        "processing": [
            {"worker": worker_id, "alive": alive, "task": describe_task(app, raw)}
            for worker_id, (raw, alive) in sorted(info.processing.items())
        ],
        "workers": sorted(info.workers),
    }


def _extra(extra: dict[str, int]) -> str:
    """The broker's own counters: `` (notifications: 3)``, or nothing."""
    return f" ({', '.join(f'{name}: {value}' for name, value in extra.items())})" if extra else ""


def run(args: argparse.Namespace) -> int:
    """Print one block (or one JSON object) per queue."""
    config = build_config(args, ())
    app = build_app(config)
    queues = args.queues
    if not queues:
        # An empty queue may leave no trace to discover: show the configured one rather than nothing.
        queues = app.broker(config["queue"]).discover_queues() or [config["queue"]]
    infos = [app.broker(name).info() for name in sorted(queues)]
    report = [as_dict(app, info) for info in infos]
    if args.json:
        print(json.dumps({"broker": config.redacted_broker_url, "queues": report}, indent=2))
        return 0
    if not report:
        print(f"no queues found at {config.redacted_broker_url}")
    for info, queue in zip(infos, report, strict=True):
        print(f"queue {queue['queue']}: {queue['length']} waiting, {queue['scheduled']} scheduled, "
              f"{len(queue['processing'])} processing, {queue['dead']} dead, "
              f"{len(queue['workers'])} live worker(s){_extra(info.extra)}")
        for held in queue["processing"]:
            state = "alive" if held["alive"] else "DEAD: the sweeper will requeue it"
            print(f"  {held['worker']} ({state}) runs {held['task']}")
    return 0
