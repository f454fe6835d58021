"""``delayed``: entry point. Every error a user can cause ends as one line on stderr, never a traceback,
and never with a password in it (every message goes through :func:`delayed_core.redact.redact`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType
from typing import NoReturn

from ..errors import BrokerUnavailable, ConfigError, DelayedError
from ..redact import redact
from .common import ArgumentParser, pause_collection

#: command name -> the module of ``delayed_core.cli`` that defines it, in the order ``--help`` lists them.
#: Modules are imported by name so that a command imports only its own (``info`` not the dashboard's).
COMMANDS: dict[str, str] = {
    "worker": "worker", "sweeper": "sweeper", "info": "info", "dead": "dead", "task": "task",
    "periodic": "periodic", "dashboard": "dashboard", "demo": "demo", "config": "config_cmd",
    "doctor": "doctor",
}


def command_module(name: str) -> ModuleType:
    """The module defining command ``name`` (a key of :data:`COMMANDS`)."""
    return importlib.import_module(f"{__package__}.{COMMANDS[name]}")


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
    for name in (command,) if command in COMMANDS else COMMANDS:
        command_module(name).add_parser(subparsers)
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


def console_main() -> NoReturn:
    """The ``delayed`` console script: run the command in ``sys.argv`` and exit with its status."""
    pause_collection()  # for the start-up; the app resumes it (see build_app)
    status = main()
    # The process ends here and the OS frees its memory: freezing what is left spares the interpreter's
    # final garbage collection over every object of every imported module (~20 ms of an admin command's
    # 150). Atexit handlers, logging's flush included, still run.
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    console_main()
