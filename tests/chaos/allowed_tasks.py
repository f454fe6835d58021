"""An allowed task module for the fuzz and security tests (``--import tests.chaos.allowed_tasks``).

It deliberately imports ``system`` from ``os``: a name merely imported into an allowed module must not
become runnable.
"""

from __future__ import annotations

from os import system  # noqa: F401  (the security tests check that this import is NOT runnable)

ran: list[tuple[object, ...]] = []


def add(a: int, b: int) -> int:
    """A real function with a real signature: wrong argument types make it raise."""
    if not (isinstance(a, int) and isinstance(b, int)):
        raise TypeError(f"add() takes two integers, got {type(a).__name__} and {type(b).__name__}")
    ran.append((a, b))
    return a + b


def accept(*args: object, **kwargs: object) -> None:
    """Accepts anything (huge payloads included)."""
    ran.append(args)


def _private() -> None:
    """Private: never runnable by name, even from an allowed module."""
    ran.append(("private",))
