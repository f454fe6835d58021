"""Wait until a worker's idle slots really block in Redis, instead of sleeping and hoping they do."""

from __future__ import annotations

import time
from typing import Any

import redis


def wait_until_blocked(client: redis.Redis, worker: Any, slots: int, timeout: float = 20.0) -> None:
    """Return once ``slots`` of ``worker``'s slot connections wait in a blocking command on the server
    ``client`` talks to (``CLIENT LIST`` flag ``b``); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ours = set(worker.broker._blocking_clients.values())
        blocked = {int(entry["id"]) for entry in client.client_list() if "b" in entry["flags"]}
        if len(ours & blocked) >= slots:
            return
        assert time.monotonic() < deadline, f"{len(ours & blocked)} of {slots} slots blocked"
        time.sleep(0.01)
