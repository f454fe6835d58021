"""Any error while handling one task ends in a dead letter with a reason: never a re-run, never a jam.

Sources covered: bad bytes in the optional meta element (``undecodable``), a ``delayed_retry_delay`` hook
that raises and a serializer that cannot encode the retry (``internal``: the failure path failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgpack
import pytest

from delayed_core import DeadLetter, PyTask, hookimpl
from delayed_core.outcome import Outcome
from delayed_core.registry import ComponentRegistry
from delayed_core.task import Task
from delayed_plugins.msgpack_serializer import MsgpackSerializer
from tests import worker_tasks
from tests.chaos.inproc import start_worker_thread, stop_worker_thread
from tests.support.any_broker import MODULE, Target, _reset_calls, broker_target  # noqa: F401 - fixtures


def serve_until(target: Target, condition: Callable[[], bool], timeout: float = 10.0, **settings: object) -> None:
    """Serve ``default`` in a thread until ``condition()`` holds; fail (with the queue state) after ``timeout``."""
    settings.setdefault("imports", [MODULE])
    app = target.app(dequeue_timeout=0.2, **settings)
    worker = app.worker()
    thread = start_worker_thread(worker)
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            assert time.monotonic() < deadline, (
                f"stalled: calls {worker_tasks.calls}, processing {app.broker('default').info().processing}, "
                f"dead {app.broker('default').dead_letters()}")
            time.sleep(0.01)
    finally:
        stop_worker_thread(worker, thread)


def letters(target: Target) -> list[DeadLetter]:
    return [DeadLetter.from_json(raw) for raw in target.broker().dead_letters()]


@pytest.mark.parametrize("meta", [{"attempt": "x"}, {"attempt": None}, {"attempt": -1}, {"attempt": True},
                                  {"attempt": 1.5}, {"attempt": 2**64 - 1}])
def test_a_bad_attempt_in_meta_is_dead_lettered_as_undecodable_and_the_queue_moves_on(
    target: Target, meta: dict[str, object]
) -> None:
    raw = msgpack.packb([f"{MODULE}:record", [1], {}, 0, meta])
    target.broker().enqueue([raw, MsgpackSerializer().dumps(PyTask(f"{MODULE}:record", ["after"]))])
    serve_until(target, lambda: len(worker_tasks.calls) == 1 and len(letters(target)) == 1)
    (letter,) = letters(target)
    assert letter.reason == "undecodable" and letter.task == raw
    assert "attempt" in letter.error
    assert worker_tasks.calls == [("record", ("after",), {})]  # the bad task never ran; the next one did
    assert target.broker().info().processing == {} and len(target.broker()) == 0


def test_a_pytask_cannot_be_built_with_a_bad_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        PyTask("m:f", meta={"attempt": "x"})
    assert PyTask("m:f", meta={"attempt": 2}).attempt == 2


class RaisingRetryHook:
    """A decision hook with a bug."""

    @hookimpl
    def delayed_retry_delay(self, queue: str, task: PyTask, outcome: Outcome) -> float | None:
        raise RuntimeError("hook bug")


def test_a_raising_retry_hook_dead_letters_the_task_as_internal(target: Target) -> None:
    target.app().queue().enqueue(PyTask(f"{MODULE}:always_fail", retry=3))
    target.app().queue().enqueue(PyTask(f"{MODULE}:record", ["after"]))
    serve_until(target, lambda: len(letters(target)) == 1 and len(worker_tasks.calls) == 2,
                plugins=[RaisingRetryHook()])
    (letter,) = letters(target)
    assert (letter.reason, letter.func, letter.attempts) == ("internal", f"{MODULE}:always_fail", 1)
    assert "RuntimeError: hook bug" in letter.error
    assert [call[0] for call in worker_tasks.calls] == ["always_fail", "record"]  # run once, never again
    assert target.broker().info().processing == {} and target.broker().info().scheduled == 0


class RetryCannotBeEncoded(MsgpackSerializer):
    """Encodes first runs, fails on retries (as a serializer with a bug would)."""

    def dumps(self, task: Task) -> bytes:
        if isinstance(task, PyTask) and task.attempt > 0:
            raise TypeError("cannot encode this retry")
        return super().dumps(task)


class BrokenSerializerPlugin:
    @hookimpl
    def delayed_register_components(self, registry: ComponentRegistry) -> None:
        registry.add_serializer("retry-breaks", RetryCannotBeEncoded)


def test_a_serializer_failing_on_the_retry_dead_letters_the_task_as_internal(target: Target) -> None:
    app = target.app(serializer="retry-breaks", plugins=[BrokenSerializerPlugin()])
    app.queue().enqueue(PyTask(f"{MODULE}:always_fail", retry=-1))
    serve_until(target, lambda: len(letters(target)) == 1, serializer="retry-breaks",
                plugins=[BrokenSerializerPlugin()], retry_backoff=0.0)
    (letter,) = letters(target)
    assert letter.reason == "internal" and "TypeError: cannot encode this retry" in letter.error
    assert [call[0] for call in worker_tasks.calls] == ["always_fail"]
    assert target.broker().info().processing == {} and len(target.broker()) == 0


class Unprintable(Exception):
    """An exception that cannot even be shown."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def raise_unprintable() -> None:
    """A task raising a hostile exception object."""
    worker_tasks.record("hostile")
    raise Unprintable()


def test_a_hostile_exception_never_makes_the_task_run_again(target: Target) -> None:
    """A hostile exception is an ordinary failure (the executor describes it safely): with no retry left
    it is dead-lettered once, never re-run by the pipeline."""
    target.app().queue().enqueue(PyTask(f"{__name__}:raise_unprintable", retry=0))
    target.app().queue().enqueue(PyTask(f"{MODULE}:record", ["after"]))
    serve_until(target, lambda: len(letters(target)) == 1 and len(worker_tasks.calls) == 2,
                imports=[MODULE, __name__])
    (letter,) = letters(target)
    assert letter.reason == "failed" and "<unprintable Unprintable" in letter.error
    assert [call[1] for call in worker_tasks.calls] == [("hostile",), ("after",)]
