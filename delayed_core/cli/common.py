"""What every subcommand shares: one-line errors, common flags, building the app from flags."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, NoReturn

from ..app import Delayed
from ..config import Config, load_config

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
    parser.add_argument("--plugin", dest="plugins", action="append", metavar="MODULE",
                        help="load this plugin module as well (repeatable)")


def overrides_from(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The settings given as flags; flags left out stay None and do not override anything."""
    return {name: getattr(args, name, None) for name in names}


def build_config(args: argparse.Namespace, names: tuple[str, ...]) -> Config:
    """Resolve the configuration with these flags as explicit values."""
    return load_config(overrides_from(args, ("broker_url", "log_level", "plugins", *names)))


def build_app(config: Config) -> Delayed:
    """The app for a command, with logging set up from the config."""
    setup_logging(config["log_level"])
    return Delayed(config=config)


def setup_logging(level: str) -> None:
    """Log to stderr in one format for every command."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value
