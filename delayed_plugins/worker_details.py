"""Built-in plugin: a starting worker tells its broker who it is (host, pid, start time, queues).

``delayed dashboard`` shows these details on its workers page. They are written once per worker start,
one round trip per queue, never on the task path; a broker without the monitoring role is skipped.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from delayed_core import hookimpl
from delayed_core.errors import DelayedError
from delayed_core.interfaces import Monitoring

if TYPE_CHECKING:
    from delayed_core.worker import Worker

logger = logging.getLogger("delayed.worker")


def details_of(worker: Worker) -> dict[str, Any]:
    """The details a worker announces (JSON-able)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": round(time.time(), 3),
        "queues": list(getattr(worker, "queues", [worker.queue_name])),
        "executor": str(worker.config["executor"]),
        "slots": len(worker.worker_ids),
    }


@hookimpl
def delayed_worker_started(worker: Worker) -> None:
    """Announce the worker's ids and details to the broker of each queue it serves."""
    brokers = getattr(worker, "brokers", {worker.queue_name: worker.broker})
    details = details_of(worker)
    for queue, broker in brokers.items():
        if not isinstance(broker, Monitoring):
            continue
        try:
            broker.announce_workers(worker.worker_ids, details)
        except DelayedError as exc:
            # Only the dashboard misses it; serving tasks matters more than describing the worker.
            logger.warning("could not record this worker's details on queue %r: %s", queue, exc)
