"""``delayed``: entry point. Every error a user can cause ends as one line on stderr, never a traceback,
and never with a password in it (every message goes through :func:`delayed_core.redact.redact`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from ..errors import BrokerUnavailable, ConfigError, DelayedError
from ..redact import redact
from . import config_cmd, dashboard, dead, demo, doctor, info, periodic, sweeper, task, worker
from .common import ArgumentParser

COMMANDS = (worker, sweeper, info, dead, task, periodic, dashboard, demo, config_cmd, doctor)
#: command name -> its module (``config_cmd`` is ``delayed config``)
BY_NAME = {module.__name__.rpartition(".")[2].removesuffix("_cmd"): module for module in COMMANDS}


def version() -> str:
    """The installed pydelayed version, from the package metadata."""
    try:
        return metadata.version("pydelayed")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (a metadata search costs every command)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"delayed (pydelayed) {version()}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser(command: str | None = None) -> ArgumentParser:
    """The top-level parser with one subparser per command module, or only ``command``'s.

    Building every command's options costs about as much as a command's own start-up (argparse looks
    for a translation of its messages for each parser), so a run that names its command first builds that
    one alone: only the top-level ``--help`` lists the commands, and it builds them all.
    """
    parser = ArgumentParser(prog="delayed", description="pydelayed: a robust Redis task queue, "
                                                        "wire-compatible with go-delayed and delayed 1.x.")
    parser.add_argument("--version", action=VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    for module in (BY_NAME[command],) if command in BY_NAME else COMMANDS:
        module.add_parser(subparsers)
    return parser


def put_cwd_on_path() -> None:
    """Make modules in the working directory importable (``--import tasks``), as ``python -m`` does.

    A console script's ``sys.path[0]`` is the directory of the script (``.venv/bin``), not the working
    directory, so without this ``delayed worker --import tasks`` could not find ``./tasks.py``.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    put_cwd_on_path()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        fail(args.command, f"configuration error: {exc}")
        return 2
    except BrokerUnavailable as exc:
        fail(args.command, f"cannot reach the broker: {exc}")
        return 1
    except DelayedError as exc:
        fail(args.command, f"error: {exc}")
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
        fail(args.command, f"unexpected error: {type(exc).__name__}: {exc} (--log-level DEBUG shows the "
                           "traceback)")
        return 1


def fail(command: str, message: str) -> None:
    """Print ``message`` as one line on stderr, with any password in it hidden."""
    print(redact(f"delayed {command}: {' '.join(message.split())}"), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
