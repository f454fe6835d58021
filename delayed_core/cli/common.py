"""What every subcommand shares: one-line errors, common flags, building the app from flags."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..app import Delayed
from ..config import Config, load_config
from ..logging_json import JsonFormatter
from ..redact import redact

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (and where to get help) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_broker_flag(parser: argparse.ArgumentParser) -> None:
    """``--broker URL``; its default comes from the config (DELAYED_BROKER_URL, file, built-in)."""
    parser.add_argument("--broker", dest="broker_url", metavar="URL",
                        help="redis://, rediss:// or unix:// URL (default: $DELAYED_BROKER_URL, the config "
                             "file, then redis://localhost:6379/0)")
    parser.add_argument("--log-level", dest="log_level", metavar="LEVEL",
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", dest="log_format", choices=("text", "json"),
                        help="text (default), or json: one JSON object per line, with the task's context")
    parser.add_argument("--plugin", dest="plugins", action="append", metavar="MODULE",
                        help="load this plugin module as well (repeatable)")


def add_queue_command(subparsers: argparse._SubParsersAction, name: str, help: str, description: str,
                      queues: str) -> argparse.ArgumentParser:
    """A subcommand about some queues of a broker: ``--broker URL`` (:func:`add_broker_flag`) and a
    repeatable ``--queue NAME`` into ``args.queues``, whose help is ``queues``."""
    parser = subparsers.add_parser(name, help=help, description=description)
    add_broker_flag(parser)
    parser.add_argument("--queue", dest="queues", action="append", metavar="NAME", help=queues)
    return parser


def overrides_from(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The settings given as flags; flags left out stay None and do not override anything."""
    return {name: getattr(args, name, None) for name in names}


def build_config(args: argparse.Namespace, names: tuple[str, ...]) -> Config:
    """Resolve the configuration with these flags as explicit values."""
    return load_config(overrides_from(args, ("broker_url", "log_level", "log_format", "plugins", *names)))


def build_app(config: Config) -> Delayed:
    """The app for a command that talks to a shared broker, with logging set up from the config.

    Every command that uses it runs in its own process, so a broker held in process memory is refused.
    The app ends the command's start-up: garbage collection, if :func:`pause_collection` paused it, runs
    again from here on (a worker collects as usual, over what it makes from then on).
    """
    setup_logging(config["log_level"], config["log_format"])
    app = Delayed(config=config)
    app.require_shared_broker()
    resume_collection()
    return app


#: whether :func:`pause_collection` paused the garbage collector (so that only it is undone, never a
#: program's own ``gc.disable()``)
_collection_paused = False


def pause_collection() -> None:
    """Pause the cyclic garbage collector until :func:`build_app` (or the process's end).

    The console script calls it first: the start-up (modules, plugins, configuration) creates some
    hundred thousand objects that live as long as the process and hardly any garbage, and collections
    walked them again and again: ~12 ms CPU of ``delayed info``. This is the sequence the ``gc`` module's
    documentation gives for a process that forks (the fork executor does): disable early, freeze the
    start-up's objects, enable.
    """
    global _collection_paused
    if gc.isenabled():
        gc.disable()
        _collection_paused = True


def resume_collection() -> None:
    """Undo :func:`pause_collection`, if it paused the collector. The objects made meanwhile are frozen
    (``gc.freeze()``): later collections never walk them again (a collection right after the pause
    would walk all of them at once), and forked children do not copy their pages by touching them."""
    global _collection_paused
    if _collection_paused:
        _collection_paused = False
        gc.freeze()
        gc.enable()


class RedactingFormatter(logging.Formatter):
    """The log format, with any password in a URL hidden, whoever wrote the line (redis-py included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines (``--log-format json``), with passwords hidden like in the text format."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr in one format for every command: ``text`` lines or ``json`` objects."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingJsonFormatter() if log_format == "json" else RedactingFormatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _number(kind: type, minimum: float, strict: bool) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` (int or float) above ``minimum`` (or at least it, if not ``strict``)."""
    noun = "an integer" if kind is int else "a number"
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum):  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value

    return parse


positive_float = _number(float, 0, strict=True)
non_negative_float = _number(float, 0, strict=False)
positive_int = _number(int, 0, strict=True)
non_negative_int = _number(int, 0, strict=False)
