"""The retry plugin: backoff arithmetic, which failures retry, delayed 1.2 ``retry`` counts, and real runs."""

from __future__ import annotations

import builtins
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from delayed_core import DeadLetter, Delayed, PyTask, hookimpl
from delayed_core.outcome import NO_RETRY, Outcome, Status
from delayed_plugins.retry import RetryPolicy, backoff_delay, matches
from tests.conftest import Backend

MODULE = __name__
_lock = threading.Lock()
#: func key -> monotonic start time of every run
starts: dict[str, list[float]] = {}


def failing(key: str, failures: int, error: str = "ValueError") -> None:
    """Record a start, then fail the first ``failures`` runs for ``key`` with the named builtin error."""
    with _lock:
        runs = starts.setdefault(key, [])
        runs.append(time.monotonic())
        count = len(runs)
    if failures < 0 or count <= failures:
        raise getattr(builtins, error)(f"planned failure {count}")


def takes_one(value: int) -> None:
    """Called with the wrong arguments by a test: the call itself raises TypeError."""
    failing("takes_one", 0)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    starts.clear()
    yield
    starts.clear()


def failure(error_type: str = "ValueError", retryable: bool = True) -> Outcome:
    return Outcome(Status.FAILED, 0.01, error_type, "boom", retryable=retryable)


# -- arithmetic ----------------------------------------------------------------------------------------
def test_backoff_doubles_from_the_first_delay_and_is_capped() -> None:
    delays = [backoff_delay(attempt, 0.5, 5.0, False) for attempt in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_delay(10_000, 1.0, 300.0, False) == 300.0  # no overflow for absurd attempt counts


@pytest.mark.parametrize(("jitter", "low", "high"), [("full", 0.0, 4.0), ("equal", 2.0, 4.0), (True, 2.0, 4.0)])
def test_jitter_stays_in_its_band(jitter: object, low: float, high: float) -> None:
    assert backoff_delay(2, 1.0, 300.0, jitter, rand=lambda: 0.0) == low  # type: ignore[arg-type]
    assert backoff_delay(2, 1.0, 300.0, jitter, rand=lambda: 1.0) == high  # type: ignore[arg-type]
    samples = {backoff_delay(2, 1.0, 300.0, jitter) for _ in range(50)}  # type: ignore[arg-type]
    assert all(low <= s <= high for s in samples) and len(samples) > 1


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter="half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


# -- which failures retry ----------------------------------------------------------------------------
def test_matching_by_name_class_and_subclass() -> None:
    assert matches(["ValueError"], "ValueError")
    assert not matches(["ValueError"], "TypeError")
    assert matches([OSError], "ConnectionRefusedError")  # a subclass, known by name in this process
    assert not matches([ConnectionError], "ValueError")
    assert matches([Exception], "Timeout") and matches([Exception], "Crashed")  # catch-all
    assert matches(["Timeout"], "Timeout")


def test_retry_count_follows_the_delayed12_field_and_max_retries_caps_it() -> None:
    policy = RetryPolicy(jitter=False)
    forever = PyTask("m:f", retry=-1)
    assert policy.delayed_retry_delay("q", forever, failure()) == 1.0
    assert policy.delayed_retry_delay("q", PyTask("m:f", retry=0), failure()) == NO_RETRY
    tenth = PyTask("m:f", retry=-1, meta={"attempt": 9})
    assert policy.delayed_retry_delay("q", tenth, failure()) == 300.0
    assert RetryPolicy(max_retries=9).delayed_retry_delay("q", tenth, failure()) == NO_RETRY
    assert RetryPolicy(max_retries=10, jitter=False).delayed_retry_delay("q", tenth, failure()) == 300.0


def test_filters_refuse_for_good_instead_of_deferring_to_the_default() -> None:
    task = PyTask("m:f", retry=3)
    only_io = RetryPolicy(retry_on=(OSError,), jitter=False)
    assert only_io.delayed_retry_delay("q", task, failure("ValueError")) == NO_RETRY
    assert only_io.delayed_retry_delay("q", task, failure("TimeoutError")) == 1.0
    assert RetryPolicy().delayed_retry_delay("q", task, failure(retryable=False)) == NO_RETRY
    seen = []
    picky = RetryPolicy(predicate=lambda t, o: seen.append((t, o)) or "again" in o.error, jitter=False)
    assert picky.delayed_retry_delay("q", task, failure()) == NO_RETRY
    assert seen and seen[0][0] is task
    assert picky.delayed_retry_delay("q", task, Outcome(Status.FAILED, 0, "E", "try again")) == 1.0


def test_loaded_by_module_name_it_reads_the_settings_per_queue(tmp_path: Path) -> None:
    # The autouse fixture made a temp dir the working directory: a delayed.toml there is the config file.
    Path("delayed.toml").write_text(
        'retry_backoff = 2.0\nretry_jitter = false\n[queues.slow]\nretry_backoff = 7.0\nretry_backoff_max = 10.0\n'
    )
    app = Delayed("memory://retry-config", plugins=["delayed_plugins.retry"], load_entry_points=False)
    policies = [p for p in app.plugin_manager.get_plugins() if isinstance(p, RetryPolicy)]
    assert len(policies) == 1
    task = PyTask("m:f", retry=-1, meta={"attempt": 1})
    hook = app.plugin_manager.hook.delayed_retry_delay
    assert hook(queue="default", task=task, outcome=failure()) == 4.0
    assert hook(queue="slow", task=task, outcome=failure()) == 10.0  # 14 capped by the queue's max
    # A second app gets its own policy: nothing is kept at module level.
    other = Delayed("memory://retry-config-2", plugins=["delayed_plugins.retry"], load_entry_points=False,
                    retry_backoff=0.0)
    assert other.plugin_manager.hook.delayed_retry_delay(queue="default", task=task, outcome=failure()) == 0.0


# -- real runs ---------------------------------------------------------------------------------------
def run_until(app: Delayed, condition: Callable[[], object], timeout: float = 10.0, queue: str = "default") -> None:
    """Serve ``queue`` in a thread until ``condition()`` is true (or fail after ``timeout``)."""
    worker = app.worker(queue)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            assert time.monotonic() < deadline, "timed out waiting for the worker"
            time.sleep(0.01)
    finally:
        worker.stop()
        thread.join(10)


def dead_letters(backend: Backend, queue: str = "default") -> list[DeadLetter]:
    return [DeadLetter.from_json(raw) for raw in backend.client.lrange(f"{queue}_dead", 0, -1)]


@pytest.mark.parametrize(("retry", "runs"), [(2, 3), (0, 1)])
def test_delayed12_retry_field_bounds_the_runs(backend: Backend, retry: int, runs: int) -> None:
    app = backend.app(imports=[MODULE], plugins=[RetryPolicy(backoff=0.0)], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["k", -1], retry=retry))
    run_until(app, lambda: dead_letters(backend))
    assert len(starts["k"]) == runs
    (letter,) = dead_letters(backend)
    assert (letter.reason, letter.attempts) == ("failed", runs)


def test_retry_forever_until_it_succeeds(backend: Backend) -> None:
    app = backend.app(imports=[MODULE], plugins=[RetryPolicy(backoff=0.0)], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["k", 5], retry=-1))
    run_until(app, lambda: len(starts.get("k", ())) == 6 and not backend.client.hlen("default_processing"))
    assert dead_letters(backend) == [] and backend.client.llen("default") == 0


def test_max_retries_and_filters_apply_in_the_worker(backend: Backend) -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.0, retry_on=("ValueError",))
    app = backend.app(imports=[MODULE], plugins=[policy], dequeue_timeout=0.2)
    queue = app.queue()
    queue.enqueue(PyTask(f"{MODULE}:failing", ["capped", -1], retry=-1))
    queue.enqueue(PyTask(f"{MODULE}:failing", ["filtered", -1, "KeyError"], retry=-1))
    queue.enqueue(PyTask(f"{MODULE}:takes_one", [1, 2, 3], retry=-1))  # wrong arguments: not retryable
    run_until(app, lambda: len(dead_letters(backend)) == 3)
    assert len(starts["capped"]) == 2 and len(starts["filtered"]) == 1
    assert "takes_one" not in starts  # the call failed before the function ran


def test_failing_twice_then_succeeding_runs_three_times_with_growing_delays(
    real_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker promotes due retries on its maintenance tick (1 s by default); a short tick keeps this
    # test fast and makes the measured gaps close to the nominal delays.
    monkeypatch.setattr("delayed_core.worker.MAINTENANCE_TICK", 0.05)
    app = real_backend.app(imports=[MODULE], plugins=[RetryPolicy(backoff=0.4, jitter=False)],
                           dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["k", 2], retry=5))
    run_until(app, lambda: len(starts.get("k", ())) == 3
              and not real_backend.client.hlen("default_processing"))
    first, second, third = starts["k"]
    gaps = (second - first, third - second)
    assert 0.4 <= gaps[0] < 0.4 + 0.35, gaps
    assert 0.8 <= gaps[1] < 0.8 + 0.35, gaps
    assert gaps[1] > gaps[0]
    assert dead_letters(real_backend) == [] and real_backend.client.zcard("default_scheduled") == 0


class RateLimitAware:
    """A user plugin deciding before RetryPolicy and the built-in default (the docs/hooks.md example)."""

    def __init__(self) -> None:
        self.requeued: list[tuple[int, float]] = []

    @hookimpl
    def delayed_retry_delay(self, queue: str, task: PyTask, outcome: Outcome) -> float | None:
        if outcome.error_type == "KeyError":
            return NO_RETRY
        return 0.0 if task.attempt < 3 else None

    @hookimpl
    def delayed_task_requeued(self, queue: str, task: PyTask, worker_id: str, delay: float) -> None:
        self.requeued.append((task.attempt, delay))


def test_a_user_plugin_decides_first_and_sees_each_requeue(backend: Backend) -> None:
    plugin = RateLimitAware()
    app = backend.app(imports=[MODULE], plugins=[plugin], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["k", -1]))  # retry=0: the default alone would stop
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["refused", -1, "KeyError"], retry=-1))
    run_until(app, lambda: len(dead_letters(backend)) == 2)
    assert len(starts["k"]) == 4 and len(starts["refused"]) == 1
    assert plugin.requeued == [(1, 0.0), (2, 0.0), (3, 0.0)]


# -- the built-in default: backoff without any plugin --------------------------------------------------
def test_the_built_in_default_backs_off_with_the_settings_of_each_queue(tmp_path: Path) -> None:
    Path("delayed.toml").write_text(
        'retry_backoff = 2.0\nretry_jitter = false\n[queues.slow]\nretry_backoff = 7.0\nretry_backoff_max = 10.0\n'
    )
    app = Delayed("memory://default-retry", load_entry_points=False)
    assert not [p for p in app.plugin_manager.get_plugins() if isinstance(p, RetryPolicy)]
    hook = app.plugin_manager.hook.delayed_retry_delay
    second = PyTask("m:f", retry=-1, meta={"attempt": 1})
    assert hook(queue="default", task=second, outcome=failure()) == 4.0
    assert hook(queue="slow", task=second, outcome=failure()) == 10.0
    assert hook(queue="default", task=PyTask("m:f", retry=0), outcome=failure()) is None
    assert hook(queue="default", task=second, outcome=failure(retryable=False)) is None
    jittered = Delayed("memory://default-retry-2", load_entry_points=False, retry_jitter=True)
    delays = {jittered.plugin_manager.hook.delayed_retry_delay(queue="q", task=second, outcome=failure())
              for _ in range(20)}
    assert all(2.0 <= delay <= 4.0 for delay in delays) and len(delays) > 1  # equal jitter: [4/2, 4]


def test_retrying_forever_by_default_is_not_a_hot_loop(real_backend: Backend) -> None:
    """retry=-1 on a task that always fails, default settings: 1 s, 2 s, 4 s ... with jitter."""
    app = real_backend.app(imports=[MODULE], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["forever", -1], retry=-1))
    started = time.monotonic()
    run_until(app, lambda: time.monotonic() - started >= 3.4)
    # Runs at 0, then after 0.5-1 s, then 1-2 s later, then 2-4 s later: at most 4 within 3.4 s.
    assert 2 <= len(starts["forever"]) <= 4, starts["forever"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts["forever"])]
    assert all(gap >= 0.5 for gap in gaps), gaps
    assert dead_letters(real_backend) == []


def test_the_default_gaps_grow(real_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("delayed_core.worker.MAINTENANCE_TICK", 0.05)
    app = real_backend.app(imports=[MODULE], dequeue_timeout=0.2, retry_backoff=0.3, retry_jitter=False)
    app.queue().enqueue(PyTask(f"{MODULE}:failing", ["k", -1], retry=2))
    run_until(app, lambda: len(dead_letters(real_backend)) == 1)
    first, second, third = starts["k"]
    gaps = (second - first, third - second)
    assert 0.3 <= gaps[0] < 0.3 + 0.3, gaps
    assert 0.6 <= gaps[1] < 0.6 + 0.3, gaps
    (letter,) = dead_letters(real_backend)
    assert (letter.reason, letter.attempts) == ("failed", 3)


def failing_later(key: str) -> None:
    """Fail the first run after 0.3 s: once the worker's first promotion poll is long done."""
    time.sleep(0.3)
    failing(key, 1)


def test_a_retry_is_heard_not_polled(real_backend: Backend) -> None:
    """A retry is announced to the worker, which promotes it after its backoff, not at the next
    keep-alive poll (30 s here). (The worker also subscribes before its slots start, so a retry scheduled
    in its first millisecond is not missed either.)"""
    app = real_backend.app(imports=[MODULE], dequeue_timeout=0.2, retry_backoff=0.05, retry_jitter=False,
                           keep_alive_timeout=60, keep_alive_interval=30)
    app.queue().enqueue(PyTask(f"{MODULE}:failing_later", ["at-start"], retry=1))
    run_until(app, lambda: len(starts.get("at-start", [])) >= 2, timeout=10)
    first, second = starts["at-start"]
    assert second - first < 2, second - first
