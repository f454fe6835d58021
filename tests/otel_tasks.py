"""Task functions for the tracing and JSON-log tests (imported by worker subprocesses)."""

from __future__ import annotations


def ok(value: int) -> int:
    """Succeeds."""
    return value


def boom(message: str) -> None:
    """Always fails."""
    raise ValueError(message)
