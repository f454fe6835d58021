"""Task functions for the handle tests (imported by workers, in-process and as subprocesses)."""

from __future__ import annotations

import os
import time

from delayed_core import Delayed

app = Delayed(os.environ.get("DELAYED_BROKER_URL", "redis://127.0.0.1:1"), load_entry_points=False)


@app.task
def add(a: int, b: int) -> int:
    """Returns a sum."""
    return a + b


@app.task
def boom(message: str) -> None:
    """Always fails."""
    raise ValueError(message)


@app.task
def big(size: int) -> bytes:
    """Returns ``size`` bytes."""
    return b"x" * size


@app.task
def unencodable() -> object:
    """Returns something msgpack cannot encode."""
    return object()


@app.task
def slow(seconds: float, value: str) -> str:
    """Sleeps, then returns ``value``."""
    time.sleep(seconds)
    return value


@app.task(result_ttl=0)
def untracked(n: int) -> int:
    """Never tracked."""
    return n


@app.task
async def nap(seconds: float, value: str) -> str:
    """Awaits, then returns ``value``."""
    import asyncio

    await asyncio.sleep(seconds)
    return value


@app.task
def spin(seconds: float, value: str) -> str:
    """Works in Python for ``seconds``, then returns ``value``; its broad ``except Exception`` must not
    swallow the thread executor's stop."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sum(range(1000))
        except Exception:  # the point: a stop is not an Exception, so this does not catch it
            continue
    return value


@app.task
def flaky(url: str) -> str:
    """Fails its first run (counted in the Redis at ``url``), succeeds the next."""
    import redis

    if redis.Redis.from_url(url).incr("flaky-runs") == 1:
        raise RuntimeError("first time unlucky, " + "with a message long enough to need a big hash " * 2)
    return "second time lucky"
