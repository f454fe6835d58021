"""Periodic functions for the periodic tests (imported by worker processes with --import)."""

from __future__ import annotations

import os
import time

from delayed_core import Delayed

app = Delayed(os.environ.get("DELAYED_BROKER_URL", "memory://periodic-tasks"), load_entry_points=False)


@app.periodic(every=1, queue="periodicq")
def every_second() -> None:
    """Record this run: the tick comes from the task (see periodic_recorder)."""
    time.sleep(0.01)
