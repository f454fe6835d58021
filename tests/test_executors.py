"""One contract for every executor (thread, fork, subprocess, asyncio), then what only isolated executors promise.

Unit tests drive an executor directly with a hand-built ExecutorContext; integration tests run a real
Worker on the session's redis-server with ``executor=...``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from delayed_core import hookimpl
from delayed_core.child_app import ChildSetup
from delayed_core.config import ConfigFile, load_config
from delayed_core.functions import FunctionRegistry
from delayed_core.interfaces import Executor, ExecutorContext
from delayed_core.outcome import Outcome, Status
from delayed_core.plugins import make_plugin_manager
from delayed_core.registry import ComponentRegistry
from delayed_core.task import PyTask
from delayed_plugins.executors import plugin as executors_plugin
from tests import executor_tasks
from tests.conftest import Backend, run_in_thread

TASKS = "tests.executor_tasks"
EXECUTORS = ["thread", "fork", "subprocess", "asyncio"]
ISOLATED = ["fork", "subprocess"]
REPO_ROOT = Path(__file__).resolve().parent.parent


def executor_class(name: str) -> type[Executor]:
    """The class registered under ``name`` by the executors plugin (so registration is tested too)."""
    registry = ComponentRegistry()
    executors_plugin.delayed_register_components(registry)
    return registry.get("executor", name)


def make_context(slots: int = 3, **settings: int) -> ExecutorContext:
    """What a worker with ``imports=[TASKS]`` and ``plugins=[TASKS]`` would hand its executor."""
    config = load_config({"imports": [TASKS], "plugins": [TASKS], **settings}, env={}, config_file=ConfigFile(),
                         load_entry_points=False)
    functions = FunctionRegistry()
    functions.allow_module(TASKS)
    plugin_manager = make_plugin_manager([TASKS], load_entry_points=False)
    return ExecutorContext(
        slots=slots,
        config=config,
        resolve=functions.resolve,
        child_started=lambda executor, slot: plugin_manager.hook.delayed_executor_child_started(
            executor=executor, slot=slot),
        child_setup=ChildSetup.of(config, functions),
    )


def run(executor: Executor, name: str, *args: Any, timeout: float | None = None, slot: int = 0,
        **kwargs: Any) -> Outcome:
    """Run ``tests.executor_tasks.<name>(*args, **kwargs)`` through the executor (which resolves it)."""
    task = PyTask(f"{TASKS}:{name}", list(args), kwargs)
    return executor.execute(slot, task, timeout)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def hook_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the test plugin's child_started hook records the pids of children (children inherit env)."""
    directory = tmp_path / "hooks"
    directory.mkdir()
    monkeypatch.setenv(executor_tasks.HOOK_DIR_ENV, str(directory))
    return directory


@pytest.fixture(params=EXECUTORS)
def executor_name(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per executor."""
    return request.param


@pytest.fixture
def executor(executor_name: str, hook_dir: Path) -> Iterator[Executor]:
    """A started executor with three slots."""
    instance = executor_class(executor_name)()
    instance.start(make_context())
    yield instance
    instance.stop()


@pytest.fixture(params=ISOLATED)
def isolated(request: pytest.FixtureRequest, hook_dir: Path) -> Iterator[Executor]:
    """A started fork or subprocess executor."""
    instance = executor_class(request.param)()
    instance.start(make_context())
    yield instance
    instance.stop()


# ---------------------------------------------------------------------------------------------------
# The contract, for every executor
# ---------------------------------------------------------------------------------------------------


def test_registered_names(executor: Executor, executor_name: str) -> None:
    assert executor.name == executor_name


def test_success(executor: Executor) -> None:
    outcome = run(executor, "noop")
    assert outcome.status is Status.SUCCEEDED, outcome.describe()
    assert outcome.duration >= 0


def test_exception_is_reported_with_type_message_and_traceback(executor: Executor) -> None:
    outcome = run(executor, "fail", "boom  with\nspaces")
    assert outcome.status is Status.FAILED
    assert (outcome.error_type, outcome.error) == ("ValueError", "boom with spaces")
    assert "Traceback" in outcome.traceback
    assert "raise ValueError(message)" in outcome.traceback
    assert outcome.retryable


def test_wrong_arguments_are_not_retryable(executor: Executor) -> None:
    outcome = run(executor, "fail")  # missing the message argument: the call itself fails
    assert outcome.status is Status.FAILED
    assert outcome.error_type == "TypeError"
    assert not outcome.retryable


def test_arguments_round_trip(executor: Executor) -> None:
    outcome = run(executor, "check_args", *executor_tasks.EXPECTED_ARGS, **executor_tasks.EXPECTED_KWARGS)
    assert outcome.status is Status.SUCCEEDED, outcome.describe()
    # The check is real: a changed argument fails it.
    outcome = run(executor, "check_args", *executor_tasks.EXPECTED_ARGS[:-1], **executor_tasks.EXPECTED_KWARGS)
    assert outcome.status is Status.FAILED and outcome.error_type == "AssertionError"


def test_timeout_stops_the_task_and_the_slot_serves_on(executor: Executor, executor_name: str) -> None:
    # The thread and asyncio executors limit a plain function softly: it stops Python code (a busy loop)
    # but not a blocking C call.
    # Isolated executors kill the process, so even a task blocked in time.sleep stops.
    task = "sleep" if executor_name in ISOLATED else "spin"
    started = time.monotonic()
    outcome = run(executor, task, 30, timeout=1)
    elapsed = time.monotonic() - started
    assert outcome.status is Status.TIMEOUT, outcome.describe()
    assert outcome.error_type == "Timeout" and "1s" in outcome.error
    # Cut short: the task was 30 s (generous: a subprocess child's start counts too, slow under load).
    assert elapsed < 15
    assert run(executor, "noop").ok


def test_child_started_hook_fires_in_the_child(executor: Executor, executor_name: str, hook_dir: Path,
                                                tmp_path: Path) -> None:
    for slot in (0, 1):
        pid_file = tmp_path / f"pid-{slot}"
        assert run(executor, "write_pid", str(pid_file), slot=slot).ok
        task_pid = int(pid_file.read_text())
        if executor_name not in ISOLATED:
            assert task_pid == os.getpid()
        else:
            assert task_pid != os.getpid()
            # The hook ran in the very process that then ran the task, for that slot.
            assert (hook_dir / f"{executor_name}-{slot}-{task_pid}").exists(), sorted(os.listdir(hook_dir))
    if executor_name not in ISOLATED:
        assert os.listdir(hook_dir) == []  # no child, no hook


def run_in_every_slot(executor: Executor, name: str, tmp_path: Path, slots: int = 3) -> None:
    """Run ``<name>(slots, timeout, path)`` (a ``meet_then_touch`` task) in every slot at once; assert each
    succeeded, which it does only when every slot runs at the same time as the others."""
    for slot in range(slots):  # warm up: subprocess children start on their first task
        assert run(executor, "noop", slot=slot).ok
    outcomes: dict[int, Outcome] = {}
    folder = tmp_path / "meet"
    folder.mkdir()

    def slot_thread(slot: int) -> None:
        outcomes[slot] = run(executor, name, slots, 30, str(folder / f"slot-{slot}"), slot=slot)

    threads = [run_in_thread(lambda slot=slot: slot_thread(slot)) for slot in range(slots)]
    for thread in threads:
        thread.join(60)
    assert [outcomes[slot].status for slot in range(slots)] == [Status.SUCCEEDED] * slots, outcomes
    assert all((folder / f"slot-{slot}").read_text() == "started done" for slot in range(slots))


def test_slots_run_concurrently(executor: Executor, tmp_path: Path) -> None:
    run_in_every_slot(executor, "meet_then_touch", tmp_path)  # one after another, the first gives up


# ---------------------------------------------------------------------------------------------------
# Crash isolation: fork and subprocess contain it; thread cannot (see the worker test below)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "args", "expected"), [
    ("exit_process", (3,), "exited with code 3"),
    ("segfault", (), "SIGSEGV"),
    ("kill_self", (), "SIGKILL"),
])
def test_crash_fails_only_that_task(isolated: Executor, task: str, args: tuple[Any, ...], expected: str) -> None:
    outcome = run(isolated, task, *args)
    assert outcome.status is Status.CRASHED
    assert expected in outcome.error, outcome.error
    assert run(isolated, "noop").ok
    assert run(isolated, "fail", "still isolated").error == "still isolated"


def test_interrupt_kills_the_running_task(isolated: Executor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result: list[Outcome] = []
    thread = run_in_thread(lambda: result.append(run(isolated, "sleep_then_touch", 30, str(marker))))
    wait_for(marker.exists, what="the task to start")
    isolated.interrupt(0)
    thread.join(3)
    assert result and result[0].status is Status.CRASHED
    assert "interrupted" in result[0].error
    assert run(isolated, "noop").ok


def test_arguments_that_are_not_msgpack_fail_without_retry(isolated: Executor) -> None:
    outcome = run(isolated, "check_args", {1, 2})
    assert outcome.status is Status.FAILED and not outcome.retryable
    assert "msgpack" in outcome.error


def test_a_function_that_does_not_resolve_where_it_runs_fails_without_retry(executor: Executor) -> None:
    # Every executor resolves the path itself (in the child for fork and subprocess): nothing runs.
    task = PyTask("os:system", ["true"])
    outcome = executor.execute(0, task, None)
    assert outcome.status is Status.FAILED and not outcome.retryable
    assert outcome.error_type == "TaskNotAllowed"


# ---------------------------------------------------------------------------------------------------
# Executor-specific behaviour
# ---------------------------------------------------------------------------------------------------


def pids_of(executor: Executor, tmp_path: Path, count: int) -> list[int]:
    """Run ``write_pid`` ``count`` times in slot 0 and return the pids that ran them."""
    pids = []
    for index in range(count):
        path = tmp_path / f"pid-{index}"
        assert run(executor, "write_pid", str(path)).ok
        pids.append(int(path.read_text()))
    return pids


def test_fork_runs_every_task_in_a_new_child(hook_dir: Path, tmp_path: Path) -> None:
    executor = executor_class("fork")()
    executor.start(make_context())
    try:
        assert len(set(pids_of(executor, tmp_path, 3))) == 3
    finally:
        executor.stop()


def test_fork_server_is_replaced_when_it_dies(hook_dir: Path) -> None:
    executor = executor_class("fork")()
    executor.start(make_context())
    try:
        server_pid = executor._server.pid  # type: ignore[attr-defined]
        os.kill(server_pid, signal.SIGKILL)
        lost = run(executor, "noop")
        assert lost.status is Status.CRASHED and "fork server died" in lost.error
        assert run(executor, "noop").ok
        assert executor._server.pid != server_pid  # type: ignore[attr-defined]
    finally:
        executor.stop()


@pytest.mark.parametrize(("settings", "expected_distinct"), [
    ({}, 1),
    ({"max_tasks_per_child": 2}, 2),
    ({"max_memory_per_child": 1}, 4),  # every interpreter is above 1 MiB: a new child per task
])
def test_subprocess_recycles_children(hook_dir: Path, tmp_path: Path, settings: dict[str, int],
                                      expected_distinct: int) -> None:
    executor = executor_class("subprocess")()
    executor.start(make_context(**settings))
    try:
        pids = pids_of(executor, tmp_path, 4)
    finally:
        executor.stop()
    assert len(set(pids)) == expected_distinct, pids
    if settings.get("max_tasks_per_child"):
        assert pids[0] == pids[1] != pids[2] == pids[3]


def test_subprocess_child_uses_a_dedicated_channel_not_stdout(hook_dir: Path, capfd: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    executor = executor_class("subprocess")()
    executor.start(make_context())
    try:
        assert run(executor, "print_lines", 50).ok
        assert run(executor, "noop").ok
    finally:
        executor.stop()
    assert "line 49" in capfd.readouterr().out


def test_subprocess_stop_ends_the_children(hook_dir: Path, tmp_path: Path) -> None:
    executor = executor_class("subprocess")()
    executor.start(make_context())
    (pid,) = set(pids_of(executor, tmp_path, 1))
    executor.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------------------------------------
# With a real Worker on a real redis-server
# ---------------------------------------------------------------------------------------------------


class LifecycleCounter:
    """Counts lifecycle hooks and records which process fired them."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.pids: set[int] = set()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.pids.add(os.getpid())

    @hookimpl
    def delayed_task_started(self, queue: str, task: PyTask, worker_id: str) -> None:
        self._count("started")

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        self._count("succeeded")

    @hookimpl
    def delayed_task_failed(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        self._count(f"failed-{outcome.status.value}")


@pytest.fixture
def worker_plugins(monkeypatch: pytest.MonkeyPatch, hook_dir: Path) -> None:
    """Load the test plugin module through the ``plugins`` setting, so subprocess children load it too."""
    monkeypatch.setenv("DELAYED_PLUGINS", TASKS)


def test_worker_hooks_run_in_the_worker_with_correct_counts(executor_name: str, real_backend: Backend,
                                                            worker_plugins: None, hook_dir: Path) -> None:
    counter = LifecycleCounter()
    app = real_backend.app(executor=executor_name, imports=[TASKS], slots=2, plugins=[counter])
    queue = app.queue()
    tasks = [PyTask(f"{TASKS}:noop") for _ in range(3)] + [PyTask(f"{TASKS}:fail", ["no"]) for _ in range(2)]
    if executor_name in ISOLATED:
        tasks.append(PyTask(f"{TASKS}:exit_process", [5]))
    queue.enqueue_many(tasks)
    app.worker().run(burst=True, install_signals=False)

    expected = {"started": len(tasks), "succeeded": 3, "failed-failed": 2}
    if executor_name in ISOLATED:
        expected["failed-crashed"] = 1
    assert counter.counts == expected
    assert counter.pids == {os.getpid()}
    client = real_backend.client
    assert client.hlen("default_processing") == 0
    assert client.llen("default_dead") == len(tasks) - 3
    children = os.listdir(hook_dir)
    if executor_name not in ISOLATED:
        assert children == []
    else:
        # fork: one child per task; subprocess: one child per slot that ran something, plus the
        # replacement of the crashed one if that slot ran again.
        assert all(name.startswith(f"{executor_name}-") for name in children)
        assert all(int(name.rsplit("-", 1)[1]) != os.getpid() for name in children)
        if executor_name == "fork":
            assert len(children) == len(tasks)
        else:
            assert 1 <= len(children) <= 3
    app.close()


def test_graceful_stop_lets_the_running_task_finish(executor_name: str, real_backend: Backend,
                                                    tmp_path: Path) -> None:
    app = real_backend.app(executor=executor_name, imports=[TASKS], shutdown_timeout=10)
    marker = tmp_path / "marker"
    app.queue().enqueue(PyTask(f"{TASKS}:sleep_then_touch", [1.0, str(marker)]))
    worker = app.worker()
    thread = run_in_thread(lambda: worker.run(install_signals=False))
    wait_for(marker.exists, what="the task to start")
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()
    assert marker.read_text() == "started done"
    client = real_backend.client
    assert client.hlen("default_processing") == 0
    assert client.llen("default") == 0 and client.llen("default_dead") == 0
    app.close()


def test_thread_executor_crash_kills_the_worker_and_the_task_stays_held(real_backend: Backend) -> None:
    """No isolation with ``thread``: ``os._exit`` in a task ends the worker process. The task is still
    held under the dead worker's id in ``N_processing``, so the sweeper requeues it once the id expires."""
    app = real_backend.app(imports=[TASKS])
    app.queue().enqueue(PyTask(f"{TASKS}:exit_process", [7]))
    script = (
        "import sys\n"
        "from delayed_core import Delayed\n"
        "app = Delayed(sys.argv[1], imports=[sys.argv[2]], executor='thread', keep_alive_timeout=1,\n"
        "              keep_alive_interval=0.5, load_entry_points=False)\n"
        "app.worker().run(install_signals=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.run([sys.executable, "-c", script, real_backend.url, TASKS], env=env,
                             capture_output=True, timeout=60)
    assert process.returncode == 7, process.stderr.decode()[-2000:]
    client = real_backend.client
    held = client.hgetall("default_processing")
    assert list(held.values()) == [app.serializer.dumps(PyTask(f"{TASKS}:exit_process", [7]))]
    assert client.llen("default") == 0
    # Once the dead worker's id expires, a sweep puts the task back on the queue.
    (worker_id,) = held
    wait_for(lambda: not client.exists(worker_id), timeout=5, what="the dead worker's id to expire")
    app.sweeper().sweep_once()
    assert client.hlen("default_processing") == 0
    assert client.llen("default") == 1
    app.close()


# ---------------------------------------------------------------------------------------------------
# Overhead measurement for docs/executors.md: python -m tests.test_executors [N]
# ---------------------------------------------------------------------------------------------------


def measure_overhead(name: str, count: int, rounds: int = 3) -> float:
    """Median tasks/s of ``count`` no-op tasks run one after another through ``execute`` on one slot."""
    import statistics

    instance = executor_class(name)()
    instance.start(make_context(slots=1))
    try:
        assert run(instance, "noop").ok  # warm up: the subprocess child starts here
        rates = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(count):
                run(instance, "noop")
            rates.append(count / (time.perf_counter() - started))
    finally:
        instance.stop()
    return statistics.median(rates)


if __name__ == "__main__":
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for executor_name_, count_ in (("thread", base * 10), ("fork", max(base // 4, 100)), ("subprocess", base),
                                   ("asyncio", base * 10)):
        rate = measure_overhead(executor_name_, count_)
        print(f"{executor_name_:10s} {rate:10.0f} tasks/s  {1e6 / rate:8.1f} us/task  ({count_} tasks x 3)")


def test_subprocess_child_resolves_functions_registered_under_a_custom_name() -> None:
    from delayed_core.functions import FunctionRegistry
    from tests.support import allowed_module

    registry = FunctionRegistry()
    registry.register(allowed_module.double, "billing:double")
    locations = registry.locations()
    assert locations == {"billing:double": "tests.support.allowed_module:double"}
    config = load_config({"broker_url": "memory://child"}, env={}, config_file=ConfigFile(), load_entry_points=False)
    setup = ChildSetup.of(config, registry)
    # What the child receives is plain data; it rebuilds the app from it.
    child_app = ChildSetup.from_message(setup.to_message()).build_app()
    assert child_app.functions.resolve("billing:double")(21) == 42
    assert child_app.config.broker_url == "memory://child"
