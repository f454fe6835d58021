"""``delayed dashboard``: serve the web dashboard (needs the extra: ``pip install 'pydelayed[dashboard]'``).

The web stack is imported only when the command runs, so ``delayed_core`` never needs it.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..errors import DelayedError
from .common import add_queue_command, build_app, build_config, non_negative_int

#: the packages the extra brings; a missing one means the extra is not installed
EXTRA_MODULES = ("starlette", "uvicorn", "jinja2")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``dashboard`` subcommand."""
    parser = add_queue_command(subparsers, "dashboard", "serve a web dashboard of the queues",
                               "Serve a web dashboard: queues, workers, scheduled tasks and dead letters, "
                               "refreshed live. Needs pydelayed[dashboard].",
                               queues="queue to show (repeatable; default: every queue found in the broker)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=non_negative_int, default=8000,
                        help="port to listen on (default 8000; 0 picks a free one)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="T",
                       help="token that enables actions (default: one is generated and printed once)")
    token.add_argument("--token-file", metavar="PATH", type=Path,
                       help="read the token from this file (keeps it out of the process list)")
    parser.add_argument("--read-only", action="store_true", help="offer no actions at all")
    parser.set_defaults(run=run)


def load_dashboard() -> object:
    """The ``delayed_dashboard`` package, or a one-line error naming the extra when it is missing."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise DelayedError(f"the dashboard needs the '{name}' package: pip install 'pydelayed[dashboard]'"
                               ) from None
    return importlib.import_module("delayed_dashboard")


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding blanks dropped), or a one-line error."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DelayedError(f"cannot read the token file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}"
                           ) from None
    if not token:
        raise DelayedError(f"the token file {str(path)!r} is empty")
    return token


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    dashboard = load_dashboard()
    app = build_app(build_config(args, ()))
    token = args.token or (read_token(args.token_file) if args.token_file else None)
    dashboard.serve(app, args.queues or (), args.host, args.port,  # type: ignore[attr-defined]
                    token=token, read_only=args.read_only)
    return 0
