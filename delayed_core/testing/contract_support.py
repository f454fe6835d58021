"""Helpers of the broker contract suite (see :mod:`delayed_core.testing.contract`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

#: a worker id for tests that need only one
WORKER = "c0ffee" + "0" * 26


def fresh_id() -> str:
    """A new worker id in the form pydelayed uses (32 hex digits)."""
    return secrets.token_hex(16)


def lacks(factory: Callable[..., object], feature: str) -> None:
    """Skip the calling test when the broker factory declares that its backend lacks ``feature``."""
    if feature in getattr(factory, "lacks", ()):
        pytest.skip(f"the broker under test lacks {feature!r}")
