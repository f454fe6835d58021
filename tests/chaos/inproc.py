"""Running a worker in a thread of the test process, for tests that need speed more than isolation."""

from __future__ import annotations

import threading
import time
from typing import Any


def start_worker_thread(worker: Any, timeout: float = 5.0, **run_kwargs: Any) -> threading.Thread:
    """Start ``worker.run`` in a daemon thread and return once its slots hold their ids and run."""
    run_kwargs.setdefault("install_signals", False)
    thread = threading.Thread(target=worker.run, kwargs=run_kwargs, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    # The slots list is filled before the slot threads start: wait for both.
    while not (worker.slots and all(slot.is_alive() for slot in worker.slots)):
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the worker did not come online")
        time.sleep(0.01)
    return thread


def stop_worker_thread(worker: Any, thread: threading.Thread, timeout: float = 5.0) -> None:
    """Stop the worker and check that its thread really ended."""
    worker.stop()
    thread.join(timeout)
    assert not thread.is_alive(), "the worker thread did not stop"
