"""Task functions for the interop tests, importable as the top-level module ``interop_funcs``.

The fixtures name ``interop_funcs:record``, so this module must be importable under that exact name by
every worker that runs them: our worker in the test process, our worker in a child process, and a real
``delayed`` 1.2 worker in a child process. Tests call :func:`make_importable` (test process) and pass
:func:`child_env` to subprocesses (``PYTHONPATH``).

Each function reports what it received by pushing a JSON record into Redis, at the URL given by the
``INTEROP_REDIS_URL`` environment variable, so the test can assert on it whatever process ran it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

#: the directory holding this module; it must be on sys.path / PYTHONPATH
MODULE_DIR = str(Path(__file__).resolve().parent)
#: environment variable with the Redis URL the functions report to
URL_VARIABLE = "INTEROP_REDIS_URL"
#: list of JSON records pushed by :func:`record`
RECORDS_KEY = "interop:records"
#: list of tags pushed when :func:`sleep_first` starts and when it ends
STARTS_KEY = "interop:starts"
DONE_KEY = "interop:done"

_clients: dict[str, redis.Redis] = {}


def make_importable() -> None:
    """Put this module's directory on ``sys.path`` so ``import interop_funcs`` works in this process."""
    if MODULE_DIR not in sys.path:
        sys.path.insert(0, MODULE_DIR)


def child_env(redis_url: str) -> dict[str, str]:
    """An environment for a child process that can import this module and report to ``redis_url``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (MODULE_DIR, env.get("PYTHONPATH", "")) if p)
    env[URL_VARIABLE] = redis_url
    return env


def _client() -> redis.Redis:
    url = os.environ[URL_VARIABLE]
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url)
    return client


def _jsonable(value: Any) -> Any:
    """bytes as ``{"$bin": hex}`` (the fixtures' notation), containers recursively, the rest as is."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def record(*args: Any, **kwargs: Any) -> None:
    """Push ``{"args": [...], "kwargs": {...}}`` to :data:`RECORDS_KEY`."""
    entry = {"args": _jsonable(list(args)), "kwargs": _jsonable(kwargs)}
    _client().rpush(RECORDS_KEY, json.dumps(entry, sort_keys=True))


def records() -> list[dict[str, Any]]:
    """Every record pushed so far, oldest first."""
    return [json.loads(raw) for raw in _client().lrange(RECORDS_KEY, 0, -1)]


def noop() -> None:
    """Do nothing (key-layout tests want a task that leaves no trace)."""


def sleep_first(tag: str, first: float, later: float) -> None:
    """Record the start; sleep ``first`` seconds on the first run of ``tag``, ``later`` on the others."""
    starts = _client().rpush(STARTS_KEY, tag)
    time.sleep(first if starts == 1 else later)
    _client().rpush(DONE_KEY, tag)


def flaky(tag: str) -> None:
    """Fail on the first run of ``tag``, then :func:`record` it (for retry tests)."""
    if _client().incr(f"interop:flaky:{tag}") == 1:
        raise RuntimeError(f"first run of {tag} fails on purpose")
    record(tag)
