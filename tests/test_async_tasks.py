"""``async def`` tasks, and plain functions that return an awaitable, under every executor.

Before this was built the thread executor called an ``async def`` function, dropped the coroutine
("coroutine ... was never awaited") and reported the task as succeeded without its body having run.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delayed_core.deadletter import DeadLetter, Reason
from delayed_core.interfaces import Executor
from delayed_core.outcome import Outcome, Status
from tests.conftest import run_in_thread
from tests.test_executors import REPO_ROOT, executor_class, make_context, run, run_in_every_slot, wait_for

ALL = ["thread", "fork", "subprocess", "asyncio"]


@pytest.fixture(params=ALL)
def any_executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Executor]:
    """A started executor of each kind, three slots."""
    instance = executor_class(request.param)()
    instance.start(make_context())
    yield instance
    instance.stop()


def test_async_task_body_runs_and_succeeds(any_executor: Executor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    outcome = run(any_executor, "async_touch", str(marker))
    assert outcome.status is Status.SUCCEEDED, outcome.describe()
    assert marker.read_text() == "ran"


def test_async_task_exception_is_a_failure(any_executor: Executor) -> None:
    outcome = run(any_executor, "async_fail", "async  boom")
    assert outcome.status is Status.FAILED
    assert (outcome.error_type, outcome.error) == ("ValueError", "async boom")
    assert "raise ValueError(message)" in outcome.traceback
    assert outcome.retryable


def test_async_task_with_wrong_arguments_is_not_retryable(any_executor: Executor) -> None:
    outcome = run(any_executor, "async_fail")  # binding the coroutine's arguments fails at the call
    assert outcome.status is Status.FAILED and outcome.error_type == "TypeError"
    assert not outcome.retryable


def test_plain_function_returning_a_coroutine_is_awaited(any_executor: Executor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    outcome = run(any_executor, "returns_coroutine", str(marker))
    assert outcome.status is Status.SUCCEEDED, outcome.describe()
    assert marker.read_text() == "awaited"
    failed = run(any_executor, "returns_failing_coroutine", "from the returned coroutine")
    assert failed.status is Status.FAILED
    assert (failed.error_type, failed.error) == ("ValueError", "from the returned coroutine")


def test_async_timeout(any_executor: Executor) -> None:
    started = time.monotonic()
    outcome = run(any_executor, "async_sleep", 30, timeout=0.5)
    assert outcome.status is Status.TIMEOUT, outcome.describe()
    assert outcome.error_type == "Timeout" and "0.5s" in outcome.error
    assert time.monotonic() - started < 15  # cut short: the sleep was 30 s (generous for a loaded machine)
    assert run(any_executor, "noop").ok


def test_async_tasks_in_slots_run_concurrently(any_executor: Executor, tmp_path: Path) -> None:
    run_in_every_slot(any_executor, "async_meet_then_touch", tmp_path)  # serially, the first gives up


def loop_identities(executor: Executor, tmp_path: Path, slots: list[int]) -> list[tuple[str, str, str]]:
    """Run ``async_loop_identity`` once per entry of ``slots``; return (pid, thread, loop) per run."""
    path = tmp_path / "loops"
    for slot in slots:
        assert run(executor, "async_loop_identity", str(path), slot=slot).ok
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def test_thread_executor_keeps_one_event_loop_per_slot(tmp_path: Path) -> None:
    executor = executor_class("thread")()
    executor.start(make_context())
    try:
        first, second, other_slot = loop_identities(executor, tmp_path, [0, 0, 1])
    finally:
        executor.stop()
    assert first == second  # the slot's loop is reused across its tasks
    assert other_slot[2] != first[2]  # another slot has its own loop


def test_asyncio_executor_runs_every_coroutine_on_one_loop_in_its_own_thread(tmp_path: Path) -> None:
    executor = executor_class("asyncio")()
    executor.start(make_context())
    try:
        identities = loop_identities(executor, tmp_path, [0, 1, 2, 0])
    finally:
        executor.stop()
    assert len({loop for _, _, loop in identities}) == 1
    assert len({thread for _, thread, _ in identities}) == 1
    assert identities[0][0] == str(os.getpid())


def test_asyncio_executor_runs_200_coroutines_at_once() -> None:
    """200 slots each await a 0.5 s sleep: one after another that is 100 s; together about 0.5 s."""
    executor = executor_class("asyncio")()
    executor.start(make_context(slots=200))
    outcomes: list[Outcome] = []

    def slot_thread(slot: int) -> None:
        outcomes.append(run(executor, "async_sleep", 0.5, slot=slot))

    try:
        started = time.monotonic()
        threads = [run_in_thread(functools.partial(slot_thread, slot)) for slot in range(200)]
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
    finally:
        executor.stop()
    assert [outcome.status for outcome in outcomes] == [Status.SUCCEEDED] * 200
    assert elapsed < 10, elapsed  # loose bound on a shared machine; serial would be 100 s


def test_asyncio_executor_cancels_at_the_time_limit_without_disturbing_other_slots(tmp_path: Path) -> None:
    executor = executor_class("asyncio")()
    executor.start(make_context())
    try:
        other: list[Outcome] = []
        thread = run_in_thread(lambda: other.append(run(executor, "async_sleep_then_touch", 1.0,
                                                        str(tmp_path / "other"), slot=1)))
        outcome = run(executor, "async_sleep", 30, timeout=0.3, slot=0)
        assert outcome.status is Status.TIMEOUT
        assert "cancel" in outcome.error
        thread.join(5)
        assert other and other[0].ok  # the neighbour on the same loop finished normally
        assert (tmp_path / "other").read_text() == "started done"
    finally:
        executor.stop()


@pytest.mark.parametrize("name", ["thread", "asyncio"])
def test_a_coroutine_that_ignores_cancellation_still_times_out(name: str) -> None:
    executor = executor_class(name)()
    executor.start(make_context())
    try:
        started = time.monotonic()
        outcome = run(executor, "async_ignores_cancellation", 3.0, timeout=0.3)
        assert outcome.status is Status.TIMEOUT, outcome.describe()
        assert time.monotonic() - started < 2.0
    finally:
        executor.stop()


@pytest.mark.parametrize("name", ["thread", "asyncio"])
def test_interrupt_cancels_a_running_coroutine(name: str, tmp_path: Path) -> None:
    executor = executor_class(name)()
    executor.start(make_context())
    marker = tmp_path / "marker"
    result: list[Outcome] = []
    try:
        thread = run_in_thread(lambda: result.append(run(executor, "async_sleep_then_touch", 30, str(marker))))
        wait_for(marker.exists, what="the task to start")
        executor.interrupt(0)
        thread.join(30)  # a deadline, not a wait: returns as soon as the run ends (slow under load)
        assert result and not result[0].ok
        assert "interrupted" in result[0].error
        assert marker.read_text() == "started"
        assert run(executor, "noop").ok
    finally:
        executor.stop()


TASKS_MODULE = '''
import asyncio
from pathlib import Path

from delayed_core import Delayed

app = Delayed()


@app.task
async def fetch(path: str, text: str) -> None:
    await asyncio.sleep(0.01)
    Path(path).write_text(text)


@app.task
async def hang() -> None:
    await asyncio.sleep(30)
'''


@pytest.mark.parametrize("executor_name", ALL)
def test_async_task_from_a_user_module_runs_under_the_worker_command(executor_name: str, real_backend: Any,
                                                                      tmp_path: Path) -> None:
    """As a user does it: ``@app.task async def``, ``.delay()``, then ``delayed worker ... --burst``."""
    (tmp_path / "tasks.py").write_text(TASKS_MODULE)
    env = {**os.environ, "DELAYED_BROKER_URL": real_backend.url, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"}
    marker = tmp_path / "fetched"
    subprocess.run([sys.executable, "-c", f"import tasks; tasks.fetch.delay({str(marker)!r}, 'body ran'); "
                    "tasks.hang.delay()"], env=env, cwd=tmp_path, check=True, timeout=60)
    delayed = os.path.join(os.path.dirname(sys.executable), "delayed")
    done = subprocess.run([delayed, "worker", "--import", "tasks", "--executor", executor_name, "--burst",
                           "--timeout", "1"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.read_text() == "body ran"
    assert "never awaited" not in done.stderr
    letters = [DeadLetter.from_json(raw) for raw in real_backend.client.lrange("default_dead", 0, -1)]
    assert [(letter.func, letter.reason) for letter in letters] == [("tasks:hang", Reason.TIMEOUT)]


def test_thread_executor_stops_while_a_slot_still_runs_a_coroutine(tmp_path: Path) -> None:
    """The worker stops the executor after its shutdown timeout, even while a slot's loop still runs."""
    executor = executor_class("thread")()
    executor.start(make_context())
    result: list[Outcome] = []
    marker = tmp_path / "marker"
    thread = run_in_thread(lambda: result.append(run(executor, "async_sleep_then_touch", 1.0, str(marker))))
    wait_for(marker.exists, what="the coroutine to start")
    executor.stop()  # must neither raise nor touch the loop its slot thread is running
    thread.join(5)
    assert result and result[0].ok, result
