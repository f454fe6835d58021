"""Task handles as a user drives them: tasks.py in a fresh folder, a producer script, ``delayed worker``,
``delayed sweeper --once`` and ``delayed task show|cancel``, all as subprocesses on a real redis-server."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest

from delayed_core import Delayed
from delayed_core.testing.processes import Process, wait_until
from tests.support import cli
from tests.support.redis_server import RedisServer

TASKS = textwrap.dedent('''
    import os
    import time
    from pathlib import Path

    from delayed_core import Delayed

    app = Delayed(os.environ["DELAYED_BROKER_URL"])


    @app.task
    def add(a, b):
        return a + b


    @app.task
    def boom():
        raise ValueError("no such order")


    @app.task
    def hang():
        time.sleep(60)


    @app.task
    def spin():
        """A minute of Python work, in short steps (the thread executor's stop lands between two)."""
        end = time.monotonic() + 60
        while time.monotonic() < end:
            time.sleep(0.01)


    @app.task
    def slow_once(marker):
        """The first run hangs (to be killed); later runs take a second."""
        if not Path(marker).exists():
            Path(marker).touch()
            time.sleep(60)
        time.sleep(1.0)
        return "done"
''')


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path


def enqueue(folder: Path, url: str, call: str) -> str:
    """Run a producer script that enqueues ``call`` and prints the handle's id."""
    result = cli.python("-c", f"import tasks; print(tasks.{call}.id)", cwd=folder, env={"DELAYED_BROKER_URL": url})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def task_cli(folder: Path, url: str, *args: str) -> tuple[int, str]:
    result = cli.delayed("task", *args, "--broker", url, cwd=folder)
    assert result.stderr == "", result.stderr
    return result.returncode, result.stdout


def test_show_and_cancel(real_redis: RedisServer, folder: Path) -> None:
    url = real_redis.url
    task_id = enqueue(folder, url, "add.delay(2, 3)")
    code, out = task_cli(folder, url, "show", task_id)
    assert code == 0 and out.startswith(f"task {task_id}: queued\n") and "tasks:add" in out
    failing = enqueue(folder, url, "boom.delay()")
    later = enqueue(folder, url, "add.delay_in(600, 1, 1)")

    worker = Process("worker", ["worker", "--broker", url, "--import", "tasks", "--dequeue-timeout", "0.2"], folder,
                     {"DELAYED_BROKER_URL": url})
    try:
        app = Delayed(url, load_entry_points=False)
        assert app.handle(task_id).result(timeout=20) == 5, worker.log()
        assert wait_until(lambda: app.handle(failing).status() == "dead", 20), worker.log()
    finally:
        assert worker.stop() == 0

    code, out = task_cli(folder, url, "show", task_id, "--json")
    record = json.loads(out)
    assert code == 0 and (record["status"], record["result"], record["attempts"]) == ("succeeded", "5", 1)
    assert record["enqueued"] <= record["started"] <= record["finished"] and record["worker"]
    code, out = task_cli(folder, url, "show", failing)
    assert code == 0 and "  error     ValueError: no such order\n" in out and 'raise ValueError("no such order")' in out

    assert task_cli(folder, url, "cancel", task_id) == (1, f"task {task_id}: not cancelled: it is succeeded already\n")
    assert task_cli(folder, url, "cancel", later) == (0, f"task {later}: cancelled; it will not run\n")
    code, out = task_cli(folder, url, "show", later)
    assert code == 0 and out.startswith(f"task {later}: cancelled\n")
    assert task_cli(folder, url, "show", "nope") == (1, "task nope: unknown (never tracked, or its record expired)\n")
    assert task_cli(folder, url, "cancel", "nope") == (
        1, "task nope: not cancelled: it is unknown (never tracked, or its record expired)\n")


def test_worker_killed_mid_task(real_redis: RedisServer, folder: Path) -> None:
    """queued, running, (SIGKILL) queued once the dead worker's liveness lapses, running again on a new
    worker after the sweep, and the result arrives."""
    url, env = real_redis.url, {"DELAYED_BROKER_URL": real_redis.url}
    marker = folder / "started"
    task_id = enqueue(folder, url, f"slow_once.delay({str(marker)!r})")
    app = Delayed(url, load_entry_points=False)
    handle = app.handle(task_id)
    assert handle.status() == "queued"
    flags = ["--import", "tasks", "--dequeue-timeout", "0.2", "--keep-alive-timeout", "1", "--keep-alive-interval",
             "0.3"]
    first = Process("first", ["worker", "--broker", url, *flags], folder, env)
    try:
        assert wait_until(lambda: handle.status() == "running", 20), first.log()
        dead_worker = handle.record().worker
    finally:
        first.signal(signal.SIGKILL)
        first.popen.wait(10)
    assert wait_until(lambda: handle.status() == "queued", 10)
    sweep = cli.delayed("sweeper", "--broker", url, "--once", cwd=folder)
    assert sweep.returncode == 0, sweep.stderr
    second = Process("second", ["worker", "--broker", url, *flags], folder, env)
    try:
        assert wait_until(lambda: handle.status() == "running", 20), second.log()
        assert handle.record().worker != dead_worker
        assert handle.result(timeout=20) == "done"
    finally:
        assert second.stop() == 0


@pytest.mark.parametrize(("executor", "call"), [("fork", "hang.delay()"), ("thread", "spin.delay()")])
def test_cancel_a_running_task(real_redis: RedisServer, folder: Path, executor: str, call: str) -> None:
    """``delayed task cancel`` on a task a worker runs: the fork executor kills the child, the thread
    executor raises into the function; the task ends cancelled and the worker runs the next one."""
    url, env = real_redis.url, {"DELAYED_BROKER_URL": real_redis.url}
    task_id = enqueue(folder, url, call)
    worker = Process("worker", ["worker", "--broker", url, "--import", "tasks", "--executor", executor,
                                "--dequeue-timeout", "0.2"], folder, env)
    try:
        app = Delayed(url, load_entry_points=False)
        assert wait_until(lambda: app.handle(task_id).status() == "running", 20), worker.log()
        assert task_cli(folder, url, "cancel", task_id) == (0, f"task {task_id}: cancelled; it will not run\n")
        code, out = task_cli(folder, url, "show", task_id)
        assert code == 0 and out.startswith(f"task {task_id}: cancelled\n")
        assert app.handle(enqueue(folder, url, "add.delay(2, 2)")).result(timeout=20) == 4
        assert "cancelled while running" in worker.log() and "dead-lettered" not in worker.log()
    finally:
        assert worker.stop() == 0
