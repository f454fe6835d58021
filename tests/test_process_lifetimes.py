"""Task processes never outlive their worker, and a task's own children never outlive its hard time limit.

Issue 10: a SIGKILLed ``delayed worker --executor subprocess`` left its child running under pid 1 at 100%
CPU, past its time limit, while the sweeper requeued the same task (two copies at once); the orphan also
printed ``BrokenPipeError`` tracebacks into the worker log. And a task that started a program of its own
(``sleep 1000``) left it running when the task was killed at its hard limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core.interfaces import Executor
from delayed_core.outcome import Status
from delayed_core.task import PyTask
from tests.conftest import Backend
from tests.test_executors import ISOLATED, REPO_ROOT, TASKS, executor_class, make_context, run, wait_for

#: Seconds a process may take to disappear after the event that must end it.
BOUND = 5.0


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by whoever adopted it, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(path: Path) -> int:
    """Wait for a task to write a pid into ``path`` and return it."""
    wait_for(lambda: path.exists() and path.read_text().strip(), timeout=30, what=f"a pid in {path.name}")
    return int(path.read_text())


@pytest.fixture(params=ISOLATED)
def isolated_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """A started fork or subprocess executor."""
    instance = executor_class(request.param)()
    instance.start(make_context())
    yield instance
    instance.stop()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_grandchildren_die_at_the_hard_time_limit(isolated_executor: Executor, tmp_path: Path,
                                                  ignore_sigterm: bool) -> None:
    pid_file = tmp_path / "grandchild"
    outcome = run(isolated_executor, "spawn_grandchild", str(pid_file), ignore_sigterm, timeout=1.0)
    assert outcome.status is Status.TIMEOUT, outcome.describe()
    grandchild = read_pid(pid_file)
    wait_for(lambda: not alive(grandchild), timeout=BOUND, what=f"the grandchild {grandchild} to die")
    assert run(isolated_executor, "noop").ok


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("executor_name", ISOLATED)
@pytest.mark.parametrize("task", ["spin_with_pid", "sleep_with_pid_then_return"])
def test_task_processes_die_with_a_sigkilled_worker(executor_name: str, task: str, real_backend: Backend,
                                                    tmp_path: Path) -> None:
    pid_file = tmp_path / "task-pid"
    app = real_backend.app()
    app.queue().enqueue(PyTask(f"{TASKS}:{task}", [str(pid_file), 3.0 if task.startswith("sleep") else 600.0]))
    app.close()
    log = tmp_path / "worker.log"
    delayed = os.path.join(os.path.dirname(sys.executable), "delayed")
    with log.open("wb") as log_file:
        worker = subprocess.Popen(
            [delayed, "worker", "--broker", real_backend.url, "--import", TASKS, "--executor", executor_name],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=tmp_path, stdout=log_file, stderr=log_file,
            start_new_session=True)
    try:
        task_pid = read_pid(pid_file)
        assert task_pid != worker.pid and alive(task_pid)
        worker.kill()
        worker.wait(10)
        wait_for(lambda: not alive(task_pid), timeout=BOUND, what=f"the task process {task_pid} to die")
        if task.startswith("sleep"):
            time.sleep(3.5)  # past the moment the orphan would have finished and written its reply
    finally:
        if worker.poll() is None:
            worker.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    assert "BrokenPipeError" not in text and "Traceback" not in text, text[-3000:]


def test_a_subprocess_child_whose_worker_is_gone_exits_quietly(tmp_path: Path) -> None:
    """The child's side alone: its worker's end of the channel closes while it works. No traceback."""
    script = (
        "import socket, sys\n"
        "from delayed_plugins.executors import subprocess_child\n"
        "from delayed_plugins.executors.ipc import Channel\n"
        "ours, theirs = socket.socketpair()\n"
        "channel = Channel(ours)\n"
        "Channel(theirs).send({'slot': 0, 'sys_path': sys.path, 'imports': [], 'functions': {}, 'plugins': []})\n"
        "theirs.close()\n"
        "sys.exit(subprocess_child.serve(channel))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_lifeline_alone_ends_a_busy_child_and_its_group(tmp_path: Path) -> None:
    """Without the parent-death signal (not Linux): end-of-file on the lifeline kills the child's group."""
    read_end, write_end = os.pipe()
    script = (
        "import subprocess, sys, time\n"
        "from delayed_plugins.executors.lifetime import start_guard\n"
        "start_guard(int(sys.argv[1]))\n"
        "grandchild = subprocess.Popen(['sleep', '1000'])\n"
        "print(grandchild.pid, flush=True)\n"
        "while True:\n"
        "    pass\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(read_end)], pass_fds=[read_end],
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                             start_new_session=True)
    os.close(read_end)
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        assert child.poll() is None and alive(grandchild)
        os.close(write_end)  # what the kernel does when the worker dies
        child.wait(BOUND)
        wait_for(lambda: not alive(grandchild), timeout=BOUND, what="the grandchild to die")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("executor_name", ISOLATED)
def test_grandchildren_die_with_a_sigkilled_worker(executor_name: str, real_backend: Backend,
                                                   tmp_path: Path) -> None:
    """Beyond the task process itself: what the task started goes too, when the worker is SIGKILLed."""
    pid_file = tmp_path / "grandchild"
    app = real_backend.app()
    app.queue().enqueue(PyTask(f"{TASKS}:spawn_grandchild", [str(pid_file)]))
    app.close()
    delayed = os.path.join(os.path.dirname(sys.executable), "delayed")
    worker = subprocess.Popen(
        [delayed, "worker", "--broker", real_backend.url, "--import", TASKS, "--executor", executor_name],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        grandchild = read_pid(pid_file)
        worker.kill()
        worker.wait(10)
        wait_for(lambda: not alive(grandchild), timeout=BOUND, what=f"the grandchild {grandchild} to die")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
