"""A module named by --import in tests: its own public functions are allowed, nothing else."""

from os import system  # noqa: F401  - imported on purpose: it must NOT become runnable

CONSTANT = 3


def double(x: int) -> int:
    """Return 2x."""
    return 2 * x


def _private() -> None:
    """Never runnable: private."""
