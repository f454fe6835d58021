"""A worker killed with SIGKILL mid-task loses nothing: its task stays held under its dead id, the sweeper
puts it back once the id's liveness key lapses, and a new worker runs it to completion.

The worker is a real child process started from the Python API; the task functions report through
Redis (``interop_funcs``), so the test sees what happened in the child.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core.task import PyTask
from tests import interop_funcs
from tests.chaos.processes import poll
from tests.conftest import Backend

interop_funcs.make_importable()

Q = "killq"
PROCESSING = f"{Q}_processing"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")

#: our worker in a child process, through the public Python API
WORKER_SCRIPT = """
import sys
from delayed_core import Delayed

app = Delayed(sys.argv[1], imports=["interop_funcs"], queue=sys.argv[2], dequeue_timeout=0.2)
app.worker(keep_alive_timeout=2, keep_alive_interval=0.5).run()
"""


@pytest.fixture
def backend(real_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    monkeypatch.setenv(interop_funcs.URL_VARIABLE, real_backend.url)
    yield real_backend


def start_worker(backend: Backend, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, backend.url, Q],
                                env=interop_funcs.child_env(backend.url), stdout=sink, stderr=sink)


def stop_worker(worker: subprocess.Popen[bytes], log: Path) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        assert worker.wait(15) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()


def test_sigkill_mid_task_then_sweep_then_rerun(backend: Backend, tmp_path: Path) -> None:
    client = backend.client
    app = backend.app()
    task = PyTask("interop_funcs:sleep_first", ["job"], {"first": 60.0, "later": 0.0})
    app.queue(Q).enqueue(task)
    log = tmp_path / "worker.log"

    first = start_worker(backend, log)
    try:
        poll(lambda: client.llen(interop_funcs.STARTS_KEY) == 1, 15, message="the task to start")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL

    # The task is held under the killed worker's id, which is still "alive" until its TTL lapses.
    held = client.hgetall(PROCESSING)
    assert list(held.values()) == [app.serializer.dumps(task)]
    (dead_id,) = (key.decode() for key in held)
    assert HEX_ID.match(dead_id)
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 0, "a sweep must not take the task of a worker whose key still lives"
    poll(lambda: client.exists(dead_id) == 0, 5, message="the dead worker's key to expire")

    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 1
    assert client.hlen(PROCESSING) == 0 and client.llen(Q) == 1

    # Also queued for the new worker: a task naming a function it may not run, then a normal one.
    app.queue(Q).enqueue(PyTask("os:system", [f"touch {tmp_path / 'pwned'}"]))
    app.queue(Q).enqueue(PyTask("interop_funcs:record", ["after"]))
    second = start_worker(backend, log)
    try:
        poll(lambda: client.llen(interop_funcs.DONE_KEY) == 1, 15, message="the rerun to finish")
        poll(lambda: len(interop_funcs.records()) == 1, 15, message="the task after the refused one")
        poll(lambda: client.hlen(PROCESSING) == 0, 15, message="the last task to be released")
    finally:
        stop_worker(second, log)

    assert client.lrange(interop_funcs.STARTS_KEY, 0, -1) == [b"job", b"job"]  # ran twice
    assert client.lrange(interop_funcs.DONE_KEY, 0, -1) == [b"job"]  # and completed once
    assert interop_funcs.records() == [{"args": ["after"], "kwargs": {}}]
    (letter,) = (json.loads(raw) for raw in client.lrange(f"{Q}_dead", 0, -1))
    assert letter["reason"] == "not_allowed" and letter["func"] == "os:system"
    assert not (tmp_path / "pwned").exists()
    assert client.llen(Q) == 0 and client.llen(f"{Q}_noti") == 0 and client.hlen(PROCESSING) == 0
