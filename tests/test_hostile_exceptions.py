"""A task that raises an exception which misbehaves when printed or pickled still ends in a FAILED outcome.

Issue 10: under the thread executor, an exception whose ``__str__`` raised made the executor itself raise;
the slot took that for an internal error and re-ran the task forever. Under fork and subprocess, a message
that is not valid UTF-8 (a lone surrogate) could not be sent back to the worker. Every executor must
describe any exception safely (``<unprintable HostileError: ...>``) and carry it across processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delayed_core.deadletter import DeadLetter, Reason
from delayed_core.interfaces import Executor
from delayed_core.outcome import Outcome, Status
from delayed_core.task import PyTask
from tests import executor_tasks
from tests.conftest import Backend
from tests.test_executors import REPO_ROOT, TASKS, executor_class, make_context, run

ALL = ["thread", "fork", "subprocess", "asyncio"]
#: Longest description an outcome may carry (failure_outcome clips longer messages).
ERROR_BOUND = 2000


def check_safe(outcome: Outcome) -> None:
    """The invariants every failure report keeps, whatever the exception did."""
    assert outcome.status is Status.FAILED, outcome
    assert outcome.error_type == "HostileError"
    for text in (outcome.error_type, outcome.error, outcome.traceback):
        assert type(text) is str
        text.encode("utf-8")  # no lone surrogate: msgpack, JSON and logs can all carry it
    assert "\n" not in outcome.error and len(outcome.error) <= ERROR_BOUND
    assert "raise error" in outcome.traceback
    assert outcome.retryable


@pytest.fixture(scope="module", params=ALL)
def shared_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """One started executor per kind for the whole module (hypothesis runs many examples on it)."""
    instance = executor_class(request.param)()
    instance.start(make_context(slots=1))
    yield instance
    instance.stop()


@pytest.mark.parametrize(("spec", "expected"), [
    ({"str": "ok"}, "plain message"),
    ({"str": "raises"}, "<unprintable HostileError: str() raised RuntimeError>"),
    ({"str": "raises", "repr_raises": True}, "<unprintable HostileError: str() raised RuntimeError>"),
    ({"str": "raises_base"}, "<unprintable HostileError: str() raised KeyboardInterrupt>"),
    ({"str": "not_a_string"}, "<unprintable HostileError: str() raised TypeError>"),
    ({"str": "raises_itself"}, "<unprintable HostileError: str() raised HostileError>"),
    ({"str": "surrogate"}, "half a pair \\ud800 and a NUL \\x00"),
    ({"str": "ok", "unpicklable": True, "repr_raises": True, "notes": True, "cause": True}, "plain message"),
])
def test_hostile_exception_is_a_plain_failure(shared_executor: Executor, spec: dict[str, Any], expected: str) -> None:
    outcome = run(shared_executor, "raise_hostile", spec)
    check_safe(outcome)
    assert outcome.error == expected


def test_a_huge_message_is_clipped(shared_executor: Executor) -> None:
    outcome = run(shared_executor, "raise_hostile", {"str": "huge"})
    check_safe(outcome)
    assert outcome.error.startswith("xxx") and outcome.error.endswith("...")


specs = st.fixed_dictionaries({
    "str": st.sampled_from(executor_tasks.HOSTILE_STR),
    "repr_raises": st.booleans(),
    "unpicklable": st.booleans(),
    "notes": st.booleans(),
    "cause": st.booleans(),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs)
def test_fuzz_hostile_exceptions(shared_executor: Executor, spec: dict[str, Any]) -> None:
    check_safe(run(shared_executor, "raise_hostile", spec))
    assert run(shared_executor, "noop").ok  # and the executor serves on


@pytest.mark.parametrize("executor_name", ALL)
def test_worker_dead_letters_hostile_failures_and_serves_on(executor_name: str, real_backend: Backend,
                                                             tmp_path: Any) -> None:
    """As a user runs it: ``delayed worker --burst`` in a subprocess, on a real redis-server."""
    app = real_backend.app()
    marker = tmp_path / "after"
    hostile = [{"str": "raises", "repr_raises": True, "unpicklable": True}, {"str": "surrogate", "cause": True}]
    app.queue().enqueue_many([PyTask(f"{TASKS}:raise_hostile", [spec]) for spec in hostile]
                             + [PyTask(f"{TASKS}:async_touch", [str(marker)])])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    delayed = os.path.join(os.path.dirname(sys.executable), "delayed")
    done = subprocess.run([delayed, "worker", "--broker", real_backend.url, "--import", TASKS, "--executor",
                           executor_name, "--burst"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.read_text() == "ran"  # the task queued behind them ran
    client = real_backend.client
    assert client.llen("default") == 0 and client.hlen("default_processing") == 0
    letters = [DeadLetter.from_json(raw) for raw in client.lrange("default_dead", 0, -1)]
    assert sorted((letter.reason, letter.error) for letter in letters) == sorted([
        (Reason.FAILED, "HostileError: <unprintable HostileError: str() raised RuntimeError>"),
        (Reason.FAILED, "HostileError: half a pair \\ud800 and a NUL \\x00"),
    ]), letters
    assert "Traceback" not in done.stderr.replace("HostileError", "")  # no unexpected-error traceback
    app.close()
