"""Times as the pages show them: UTC wall-clock, and relative to now."""

from __future__ import annotations

import datetime as dt
import time


def when(timestamp: float | None) -> str:
    """``2026-12-01 12:30:05 UTC``; "-" when unknown."""
    if not timestamp:
        return "-"
    try:
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError, TypeError):  # a hand-written entry's time out of range
        return str(timestamp)


def ago(timestamp: float | None, now: float | None = None) -> str:
    """``12 s ago``, ``in 3 min``, ``2 h ago``; "-" when unknown."""
    if not isinstance(timestamp, (int, float)) or not timestamp:
        return "-"
    delta = (time.time() if now is None else now) - timestamp
    size = abs(delta)
    if size < 120:
        text = f"{size:.0f} s"
    elif size < 7200:
        text = f"{size / 60:.0f} min"
    elif size < 172800:
        text = f"{size / 3600:.0f} h"
    else:
        text = f"{size / 86400:.0f} d"
    return f"{text} ago" if delta >= 0 else f"in {text}"
