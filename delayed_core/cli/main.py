"""``delayed``: entry point. Every error a user can cause ends as one line on stderr, never a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..errors import BrokerUnavailable, ConfigError, DelayedError
from . import config_cmd, dead, demo, info, sweeper, worker
from .common import ArgumentParser

COMMANDS = (worker, sweeper, info, dead, demo, config_cmd)


def build_parser() -> ArgumentParser:
    """The top-level parser with one subparser per command module."""
    parser = ArgumentParser(prog="delayed", description="pydelayed: a robust Redis task queue, "
                                                        "wire-compatible with go-delayed and delayed 1.x.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"delayed {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        print(f"delayed {args.command}: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    except DelayedError as exc:
        print(f"delayed {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except Exception as exc:
        # Still one line for the user; the traceback is there for whoever asks for it.
        logging.getLogger("delayed").debug("unexpected error in delayed %s", args.command, exc_info=True)
        message = " ".join(str(exc).split())
        print(f"delayed {args.command}: unexpected error: {type(exc).__name__}: {message} "
              "(--log-level DEBUG shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
