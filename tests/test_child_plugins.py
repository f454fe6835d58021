"""A subprocess executor's child builds the worker's app through the same factory (plugin manager, then
``delayed_app_created``), so a plugin object registered in ``delayed_app_created`` gets
``delayed_executor_child_started`` in the child, as under ``fork``. Run as a user runs it: ``delayed
worker --plugin MODULE`` from a fresh folder, on the test's redis-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from delayed_core import Delayed
from delayed_core.task import PyTask
from tests.support import cli
from tests.support.redis_server import RedisServer

#: a plugin module whose own hooks only register a second plugin object; that object records its calls
PROBE = '''
import os

from delayed_core import hookimpl


class ChildProbe:
    @hookimpl
    def delayed_executor_child_started(self, executor, slot):
        with open(os.environ["PROBE_FILE"], "a") as out:
            out.write(f"{executor} {slot} {os.getpid()}\\n")


@hookimpl
def delayed_app_created(app):
    app.register_plugin(ChildProbe(), name=f"childprobe:{id(app)}")


def write_pid(path):
    with open(path, "w") as out:
        out.write(str(os.getpid()))
'''


@pytest.mark.parametrize("executor", ["subprocess", "fork"])
def test_a_plugin_registered_in_app_created_gets_child_started_in_the_child(
        executor: str, real_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "childprobe.py").write_text(PROBE)
    probe_file = tmp_path / "child_started.log"
    app = Delayed(real_redis.url, load_entry_points=False)
    app.queue().enqueue_many([PyTask("childprobe:write_pid", [str(tmp_path / f"ran-{n}")]) for n in range(2)])

    result = cli.delayed("worker", "--broker", real_redis.url, "--import", "childprobe", "--plugin", "childprobe",
                         "--executor", executor, "--burst", "--dequeue-timeout", "0.2", cwd=tmp_path,
                         env={"PROBE_FILE": str(probe_file)})
    assert result.returncode == 0, result.stderr
    ran = {int((tmp_path / f"ran-{n}").read_text()) for n in range(2)}
    calls = [line.split() for line in probe_file.read_text().splitlines()]
    # subprocess: the slot's one child ran both tasks; fork: one child per task. Each child fired the hook
    # once, before its task, and never in the worker.
    assert sorted(int(pid) for _, _, pid in calls) == sorted(ran)
    assert {(name, slot) for name, slot, _ in calls} == {(executor, "0")}
    assert len(calls) == (1 if executor == "subprocess" else 2)
    app.close()
