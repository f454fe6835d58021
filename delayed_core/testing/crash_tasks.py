"""Task functions of the crash-point harness; a worker allows them with ``--import`` of this module.

Every run appends lines to files in ``run_dir`` (one ``O_APPEND`` write per line, so concurrent workers
never interleave a line): ``started`` when a run begins, ``done`` when it ends without error. A run cut
short by a kill leaves a ``started`` line and no ``done`` line, so ``done`` counts completed side effects:
a task id missing from it was lost, an id present twice ran twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from delayed_core import crashpoints


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def _first_run(run_dir: Path, task_id: int) -> bool:
    """True exactly once per task id and run directory (an exclusive create of a marker file)."""
    try:
        os.close(os.open(run_dir / f"first-{task_id}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def record(run_dir: str, task_id: int, first_sleep: float = 0.0, fail_first: bool = False) -> None:
    """Record a run of ``task_id``.

    :param run_dir: the run's directory (shared by the harness and every worker).
    :param task_id: the task's number.
    :param first_sleep: seconds to sleep on the task's first run only (a task running at a SIGTERM).
    :param fail_first: raise on the task's first run (a retry: enqueue with ``retry=1``).
    """
    directory = Path(run_dir)
    _append(directory / "started", str(task_id))
    # The mid-task boundary: a harness armed at ``mid_task`` kills the worker here.
    crashpoints.reached("mid_task")
    first = _first_run(directory, task_id) if (first_sleep or fail_first) else False
    if first and fail_first:
        raise RuntimeError(f"task {task_id} fails on its first run, on purpose")
    if first and first_sleep:
        time.sleep(first_sleep)
    _append(directory / "done", str(task_id))
