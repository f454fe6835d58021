"""``delayed worker``: serve one queue, or several in strict priority order."""

from __future__ import annotations

import argparse

from .common import (
    add_queue_command,
    build_app,
    build_config,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

SETTINGS = (
    "queue", "slots", "prefetch", "imports", "executor", "timeout", "keep_alive_timeout", "keep_alive_interval",
    "dequeue_timeout", "shutdown_timeout", "allow_any_import", "max_recoveries", "dead_letter_max",
    "max_tasks_per_child", "max_memory_per_child",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``worker`` subcommand."""
    parser = add_queue_command(subparsers, "worker", "run a worker serving one queue or several",
                               "Run a worker: take tasks from a queue and run them.",
                               queues="queue to serve (default: 'default'); repeat it to serve several "
                                      "queues, highest priority first")
    parser.add_argument("--slots", type=positive_int, metavar="N", help="tasks run at once (default 1)")
    parser.add_argument("--prefetch", type=positive_int, metavar="K",
                        help="tasks each slot takes and settles per broker call (default 1; more pays for "
                             "short tasks, costs latency and fairness for long ones: docs/scaling.md)")
    parser.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                        help="allow the functions of this module (repeatable)")
    parser.add_argument("--executor", metavar="NAME", help="thread (default), fork, subprocess or asyncio")
    parser.add_argument("--timeout", type=non_negative_float, metavar="SECONDS",
                        help="default time limit of a task; 0 = none")
    parser.add_argument("--keep-alive-timeout", type=positive_float, metavar="SECONDS",
                        help="seconds a silent worker counts as alive (default 60)")
    parser.add_argument("--keep-alive-interval", type=positive_float, metavar="SECONDS",
                        help="seconds between keep-alive refreshes (default 15)")
    parser.add_argument("--dequeue-timeout", type=positive_float, metavar="SECONDS",
                        help="seconds an idle slot waits for a task per call (default 5; one Redis "
                             "BLPOP blocks at most 25 s, then the slot blocks again)")
    parser.add_argument("--shutdown-timeout", type=non_negative_float, metavar="SECONDS",
                        help="seconds running tasks get to finish at stop (default 30)")
    parser.add_argument("--max-recoveries", type=non_negative_int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--dead-letter-max", type=positive_int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--max-tasks-per-child", type=non_negative_int, metavar="N",
                        help="subprocess executor: restart a child after N tasks")
    parser.add_argument("--max-memory-per-child", type=non_negative_int, metavar="MIB",
                        help="subprocess executor: restart a child above this RSS")
    parser.add_argument("--allow-any-import", action="store_const", const=True,
                        help="UNSAFE: run any importable function a task names (delayed 1.x behaviour)")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--processes", type=processes_count, default=1, metavar="N",
                        help="run N worker processes under one supervising parent; 'auto' = one per CPU "
                             "(default 1: this process is the worker)")
    parser.set_defaults(run=run, parser=parser)


def processes_count(text: str) -> int:
    """``--processes``: a positive integer, or ``auto`` for the number of usable CPUs."""
    if text == "auto":
        from ..supervisor import cpu_count

        return cpu_count()
    return positive_int(text)


def run(args: argparse.Namespace) -> int:
    """Build the app and serve until stopped."""
    # The first --queue is also the `queue` setting (the app's default queue); the rest follow it in order.
    args.queue = args.queues[0] if args.queues else None
    config = build_config(args, SETTINGS)
    app = build_app(config)
    if config["allow_any_import"]:
        import logging

        logging.getLogger("delayed").warning(
            "--allow-any-import is on: tasks may run ANY importable function (os:system included). "
            "Only use it when every producer that can write to this Redis is trusted."
        )
    if args.processes > 1:
        from ..supervisor import child_command, run_supervised

        return run_supervised(app, child_command(args.parser, args, "processes"), args.processes, args.burst,
                              args.queues or [config["queue"]])
    worker = app.worker(args.queues or config["queue"])
    worker.run(burst=args.burst)
    return 0
