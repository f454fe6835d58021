"""Interop with the real ``delayed`` 1.2.0b2 and with go-delayed's bytes, on a real redis-server.

- (a) tasks pydelayed enqueues are run by a REAL delayed 1.2 worker (a child process);
- (b) tasks the real delayed 1.2 enqueues are run by our worker;
- (c) the golden go-delayed and delayed 1.2 bytes, pushed raw: our worker runs every Python task and
  dead-letters every other one with its reason; nothing is dropped or left held;
- (d) the sweepers are language-neutral: ours recovers a dead delayed 1.2 worker's task (decimal id),
  and delayed 1.2's recovers a dead pydelayed worker's task (32 hex chars).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delayed_core.deadletter import DeadLetter
from delayed_core.task import PyTask
from tests import interop_funcs
from tests.chaos.processes import poll
from tests.conftest import Backend

delayed_queue = pytest.importorskip("delayed.queue", reason="needs delayed==1.2.0b2 (the dev extra)")
delayed_task = pytest.importorskip("delayed.task")

interop_funcs.make_importable()

Q = "interop"
REC = "interop_funcs:record"
FIXTURES = Path(__file__).parent / "fixtures"

#: a real delayed 1.2 worker, driven through its own API; SIGHUP is its stop signal
DELAYED12_WORKER = """
import sys
import redis
from delayed.queue import Queue
from delayed.worker import Worker

queue = Queue(sys.argv[2], redis.Redis.from_url(sys.argv[1]), dequeue_timeout=0.2, keep_alive_timeout=10)
Worker(queue, keep_alive_interval=1).run()
"""


@pytest.fixture
def backend(real_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The real server; the task functions report to it."""
    monkeypatch.setenv(interop_funcs.URL_VARIABLE, real_backend.url)
    yield real_backend


def run_our_worker(backend: Backend, **settings: Any) -> None:
    """Our worker, in this process, until the queue is empty."""
    app = backend.app(imports=["interop_funcs"], dequeue_timeout=0.1, **settings)
    app.worker(Q).run(burst=True, install_signals=False)


def expected_record(args: Any = None, kwargs: Any = None) -> dict[str, Any]:
    """What :func:`interop_funcs.record` stores for a call (nil args / kwargs mean empty)."""
    return {"args": list(args or []), "kwargs": dict(kwargs or {})}


def dead_letters(backend: Backend) -> list[DeadLetter]:
    return [DeadLetter.from_json(raw) for raw in backend.client.lrange(f"{Q}_dead", 0, -1)]


def assert_queue_drained(backend: Backend) -> None:
    client = backend.client
    assert (client.llen(Q), client.llen(f"{Q}_noti"), client.hlen(f"{Q}_processing")) == (0, 0, 0)


# -- (a) pydelayed -> real delayed 1.2 worker ----------------------------------------------------
def test_real_delayed_12_worker_runs_our_tasks(backend: Backend) -> None:
    calls = [
        ([1, "x", b"\x00\xff", 1.5, None, [True, {"n": -7}]], {"c": 3, "d": [True, None]}),
        ([], {}),
        ([], {"only": "kwargs"}),
        ([2**40, -1], {}),
    ]
    queue = backend.app().queue(Q)
    for args, kwargs in calls:
        queue.enqueue(PyTask(REC, args, kwargs))
    queue.enqueue(PyTask(REC, ["with retry"], retry=2))  # 1.2 reads the 4-element form too
    worker = subprocess.Popen([sys.executable, "-c", DELAYED12_WORKER, backend.url, Q],
                              env=interop_funcs.child_env(backend.url), stderr=subprocess.PIPE)
    try:
        poll(lambda: len(interop_funcs.records()) == len(calls) + 1, 15, message="the delayed 1.2 worker")
        poll(lambda: backend.client.hlen(f"{Q}_processing") == 0, 15, message="delayed 1.2 to release its task")
    finally:
        worker.send_signal(signal.SIGHUP)
        _, stderr = worker.communicate(timeout=15)
    assert worker.returncode == 0, stderr.decode(errors="replace")[-2000:]
    expected = [expected_record(args, interop_funcs._jsonable(kwargs)) for args, kwargs in calls]
    for record in expected:
        record["args"] = interop_funcs._jsonable(record["args"])
    assert interop_funcs.records() == [*expected, expected_record(["with retry"], {})]
    assert_queue_drained(backend)
    assert b"Failed" not in stderr, stderr.decode(errors="replace")[-2000:]


# -- (b) real delayed 1.2 producer -> our worker -------------------------------------------------
def test_our_worker_runs_real_delayed_12_tasks(backend: Backend) -> None:
    theirs = delayed_queue.Queue(Q, backend.client)
    calls = [([1, 2], {"c": 3}), ((3, "tuple"), None), (None, {"b": b"\x01"}), (None, None)]
    for args, kwargs in calls:
        theirs.enqueue(delayed_task.PyTask(REC, args, kwargs))
    theirs.enqueue(delayed_task.PyTask("interop_funcs:flaky", ["retried"], retry=1))
    run_our_worker(backend, retry_backoff=0.0)  # retries back off by default; a burst worker would not wait
    expected = [expected_record(args, kwargs) for args, kwargs in calls]
    expected[2]["kwargs"] = {"b": {"$bin": "01"}}
    # delayed 1.2's retry count is honoured: the flaky task failed once, ran again and succeeded.
    assert interop_funcs.records() == [*expected, expected_record(["retried"], {})]
    assert backend.client.get("interop:flaky:retried") == b"2"
    assert dead_letters(backend) == []
    assert_queue_drained(backend)


# -- (c) golden bytes pushed raw -----------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["go_enqueued", "py12_enqueued"])
def test_golden_bytes_are_run_or_dead_lettered_never_dropped(backend: Backend, fixture: str) -> None:
    entries = json.loads((FIXTURES / f"{fixture}.json").read_text())
    for entry in entries:
        backend.client.rpush(Q, bytes.fromhex(entry["hex"]))
        backend.client.rpush(f"{Q}_noti", entry["noti"])
    run_our_worker(backend)

    # The fixtures' "decoded" field writes bytes as {"$bin": hex}, like interop_funcs.record does.
    runnable = [e for e in entries if e["kind"] == "PyTask" and e["name"] != "py_args_struct"]
    expected_runs = [expected_record(*(e["decoded"][1:3])) for e in runnable]
    assert interop_funcs.records() == expected_runs

    by_reason: dict[str, set[str]] = {}
    for letter in dead_letters(backend):
        by_reason.setdefault(letter.reason, set()).add(letter.task.hex())
        assert letter.queue == Q and letter.error
    go_tasks = {e["hex"] for e in entries if e["kind"] == "GoTask"}
    struct_kwargs = {e["hex"] for e in entries if e["name"] == "py_args_struct" and e["kind"] == "PyTask"}
    assert by_reason.pop("wrong_language") == go_tasks
    assert by_reason.pop("undecodable", set()) == struct_kwargs
    assert by_reason == {}
    # Nothing silently dropped: every pushed element was either run or dead-lettered.
    letters = len(dead_letters(backend))
    assert len(interop_funcs.records()) + letters == len(entries)
    assert_queue_drained(backend)


# -- (d) language-neutral sweepers ---------------------------------------------------------------
def test_our_sweeper_recovers_a_dead_delayed_12_worker(backend: Backend) -> None:
    """delayed 1.2 ids are decimal strings; the sweeper only asks whether GET <id> answers."""
    py12 = {e["name"]: bytes.fromhex(e["hex"]) for e in json.loads((FIXTURES / "py12_enqueued.json").read_text())}
    backend.client.hset(f"{Q}_processing", mapping={"4245": py12["py_args"], "4246": py12["py_kwargs_only"]})
    backend.client.set("4246", "1", ex=60)  # 4246 is alive (its key exists), 4245 is dead
    app = backend.app(imports=["interop_funcs"])
    (report,) = app.sweeper([Q]).sweep_once()
    assert report.requeued == 1
    assert backend.client.lrange(Q, 0, -1) == [py12["py_args"]]
    assert backend.client.hgetall(f"{Q}_processing") == {b"4246": py12["py_kwargs_only"]}
    run_our_worker(backend)
    assert interop_funcs.records() == [expected_record([1, 2], {})]


def test_delayed_12_sweeper_recovers_a_dead_pydelayed_worker(backend: Backend) -> None:
    app = backend.app()
    broker = app.broker(Q)
    assert broker.claim_worker_id("0123456789abcdef0123456789abcdef", 60)
    broker.enqueue([app.serializer.dumps(PyTask(REC, [9]))])
    assert broker.dequeue("0123456789abcdef0123456789abcdef", 0.1) is not None
    theirs = delayed_queue.Queue(Q, backend.client)
    assert theirs.requeue_lost() == 0  # alive: left alone
    broker.go_offline(["0123456789abcdef0123456789abcdef"])  # dead now
    assert theirs.requeue_lost() == 1
    assert backend.client.llen(Q) == backend.client.llen(f"{Q}_noti") == 1
    run_our_worker(backend)
    assert interop_funcs.records() == [expected_record([9], {})]
