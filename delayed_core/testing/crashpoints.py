"""The ``delayed-crashpoints`` pytest plugin: prove that no task is lost at any crash point of a broker.

Installed with pydelayed (entry point ``pytest11``), it gives every test session the
``crashpoint_harness`` fixture, a factory of :class:`~delayed_core.testing.crash_run.CrashHarness` for a
broker URL. One test per case, for any broker whose URL works from several processes::

    import pytest
    from delayed_core.testing.crashpoints import check_recovered, crash_cases

    @pytest.mark.parametrize("case", crash_cases(), ids=lambda case: case.label)
    def test_no_task_lost(crashpoint_harness, my_broker_url, case):
        check_recovered(crashpoint_harness(my_broker_url).run(case))

Each run enqueues recorded tasks, breaks one worker at the point (SIGKILL, or a cut of its broker
connections), recovers with a replacement worker and a sweeper, and counts lost and duplicated runs.
The ``disconnect`` mode needs the broker's package to provide ``<package>.testing.cut_connections``
(see ``delayed_redis/testing.py``); ``crash_cases(modes=("sigkill",))`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from delayed_core import crashpoints

from .crash_run import CrashCase, CrashHarness, CrashReport
from .crash_switches import MODES

#: executors that run a task in a child process: a ``disconnect`` at ``mid_task`` would act in the child,
#: which holds none of the worker's connections, so that case is not run
CHILD_EXECUTORS = ("fork", "subprocess")

__all__ = ["CrashCase", "CrashHarness", "CrashReport", "check_recovered", "crash_cases", "crashpoint_harness"]


def crash_cases(executors: Iterable[str] = ("thread",), modes: Iterable[str] = MODES,
                points: Iterable[str] = crashpoints.POINTS, tasks: int = 20) -> list[CrashCase]:
    """Every meaningful (point, mode, executor) case, ``tasks`` tasks each."""
    return [CrashCase(point, mode, executor, tasks)
            for executor in executors for point in points for mode in modes
            if not (point == "mid_task" and mode == "disconnect" and executor in CHILD_EXECUTORS)]


def check_recovered(report: CrashReport) -> None:
    """Fail (with the processes' logs) unless the crash happened, no task was lost or dead-lettered,
    duplicates stayed within the documented bound and, after a disconnect, the worker carried on."""
    details = f"{report.summary()}\n{report.diagnosis}"
    assert report.fired, f"the crash point was never reached, so the run proves nothing\n{details}"
    assert report.lost == [], f"tasks never ran: {report.lost}\n{details}"
    assert report.dead_letters == 0, f"tasks were dead-lettered\n{details}"
    assert report.duplicates <= report.bound, f"more duplicates than the documented bound\n{details}"
    assert report.survived is not False, f"the worker did not survive losing its connections\n{details}"


@pytest.fixture
def crashpoint_harness(tmp_path: Path) -> Callable[..., CrashHarness]:
    """``crashpoint_harness(broker_url, **settings)``: a harness keeping its files under ``tmp_path``.

    ``settings`` are :class:`CrashHarness` fields (``keep_alive_timeout``, ``drain_timeout``,
    ``extra_worker_args`` ...).
    """

    def make(broker_url: str, **settings: Any) -> CrashHarness:
        return CrashHarness(broker_url, tmp_path / "crashpoints", **settings)

    return make
