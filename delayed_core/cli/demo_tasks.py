"""Task functions for ``delayed demo``. They live in a module so the worker can allow them by name."""

from __future__ import annotations

import time

_failed_once: set[int] = set()


def resize_image(image_id: int) -> str:
    """A task that does a little work."""
    time.sleep(0.05)
    return f"image {image_id} resized"


def send_email(address: str, subject: str = "") -> None:
    """A task that fails on its first try, to show retries."""
    key = hash(address)
    if key not in _failed_once:
        _failed_once.add(key)
        raise ConnectionError(f"SMTP server busy for {address}")
    time.sleep(0.02)


def divide(a: float, b: float) -> float:
    """A task that fails for good when b is 0, to show dead letters."""
    return a / b
