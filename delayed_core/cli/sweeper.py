"""``delayed sweeper``: recover lost tasks across queues (and schedule the periodic tasks it knows)."""

from __future__ import annotations

import argparse

from ..interfaces.lost_workers import ExpiryEvents
from .common import add_queue_command, build_app, build_config, non_negative_int, positive_float


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``sweeper`` subcommand."""
    parser = add_queue_command(subparsers, "sweeper", "requeue the tasks of dead workers",
                               "Requeue the tasks of dead workers, dead-letter poison tasks, repair the broker's "
                               "bookkeeping and promote due scheduled tasks, for each queue.",
                               queues="queue to sweep (repeatable; default: 'default')")
    parser.add_argument("--interval", dest="sweeper_interval", type=positive_float, metavar="SECONDS",
                        help="seconds between sweeps (default 60)")
    parser.add_argument("--max-recoveries", type=non_negative_int, metavar="N",
                        help="recover a task at most N times from workers that stopped holding it; "
                             "at its next loss, dead-letter it as poison; 0 = no limit (default 5)")
    parser.add_argument("--expiry-events", choices=[mode.value for mode in ExpiryEvents], default="auto",
                        help="sweep as soon as a worker's liveness expires: auto = listen, and turn the "
                             "broker's expiry events on where allowed; listen = never change the broker's "
                             "settings; off = every --interval only (default auto)")
    parser.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                        help="take part in scheduling the periodic tasks of this module, as workers that "
                             "import it do (repeatable; default: the imports setting)")
    parser.add_argument("--once", action="store_true", help="sweep once and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sweep once or forever."""
    from ..sweeper import describe_extra  # the sweeper's modules, for this command only

    config = build_config(args, ("sweeper_interval", "max_recoveries", "imports"))
    app = build_app(config)
    loop = app.sweeper(args.queues or [config["queue"]])
    if args.once:
        for report in loop.sweep_once():
            print(f"{report.queue}: requeued {report.requeued}, poisoned {report.poisoned}, "
                  f"{describe_extra(report.extra, ', ')}promoted {report.promoted}")
        return 0
    loop.run(expiry_events=args.expiry_events)
    return 0
