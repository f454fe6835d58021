"""Dead letters: the broker operations behind them, and ``delayed dead list | show | requeue | purge``."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from delayed_core import DeadLetter, PyTask, hookimpl
from delayed_core.cli.main import main
from tests.chaos.processes import CliProcess
from tests.conftest import Backend

MODULE = __name__
_lock = threading.Lock()
runs: list[int] = []
#: while True, ``flaky`` fails: the test flips it to show that a requeued task really runs again
broken = {"now": True}


def flaky(n: int) -> None:
    """Fail while ``broken["now"]``; record the run either way."""
    with _lock:
        runs.append(n)
    if broken["now"]:
        raise RuntimeError(f"backend {n} is down")


@pytest.fixture(autouse=True)
def _reset() -> None:
    runs.clear()
    broken["now"] = True


def drain(backend: Backend, queue: str = "default", **settings: object) -> None:
    app = backend.app(imports=[MODULE], dequeue_timeout=0.2, **settings)
    app.worker(queue).run(burst=True, install_signals=False)


def cli(backend: Backend, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``delayed dead ...`` against the backend; return (status, stdout, stderr)."""
    status = main(["dead", *argv, "--broker", backend.url])
    out, err = capsys.readouterr()
    return status, out, err


# -- broker operations (fakeredis and real Redis) --------------------------------------------------
def test_remove_dead_letter_requeues_atomically_and_only_once(backend: Backend) -> None:
    broker = backend.app().broker("default")
    letter = DeadLetter(task=b"\x94raw", reason="failed", error="E: x", queue="default")
    broker.dead_letter(None, letter.to_json())
    (entry,) = broker.dead_letters()
    assert DeadLetter.from_json(entry).task == b"\x94raw"
    assert broker.remove_dead_letter(entry, requeue_task=letter.task)
    assert not broker.remove_dead_letter(entry, requeue_task=letter.task)  # a second requeue is refused
    assert backend.client.lrange("default", 0, -1) == [b"\x94raw"]
    assert backend.client.llen("default_noti") == 1
    assert broker.dead_letters() == []


def test_failed_tasks_are_kept_newest_first_and_bounded(backend: Backend) -> None:
    backend.app().queue().enqueue_many([PyTask(f"{MODULE}:flaky", [i]) for i in range(5)])
    drain(backend, dead_letter_max=3)
    letters = [DeadLetter.from_json(raw) for raw in backend.client.lrange("default_dead", 0, -1)]
    assert [letter.error for letter in letters] == [f"RuntimeError: backend {i} is down" for i in (4, 3, 2)]


# -- the CLI (real Redis: the CLI builds its app from a URL) ---------------------------------------
def test_list_show_requeue_and_the_task_runs_again(real_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    real_backend.app().queue().enqueue_many([PyTask(f"{MODULE}:flaky", [1]), PyTask(f"{MODULE}:flaky", [2])])
    drain(real_backend)
    assert runs == [1, 2]

    status, out, _ = cli(real_backend, capsys, "list")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 2
    assert lines[0].split()[0] == "0" and "failed" in lines[0] and "backend 2 is down" in lines[0]

    status, out, _ = cli(real_backend, capsys, "list", "--json")
    entries = json.loads(out)
    assert [e["index"] for e in entries] == [0, 1]
    assert entries[1]["task"] == f"PyTask('{MODULE}:flaky', [1], {{}})"
    assert entries[1]["func"] == f"{MODULE}:flaky" and entries[1]["attempts"] == 1

    status, out, _ = cli(real_backend, capsys, "show", "1")
    assert status == 0
    assert "backend 1 is down" in out and "traceback:" in out and 'raise RuntimeError(f"backend' in out
    assert f"PyTask('{MODULE}:flaky', [1], {{}})" in out

    broken["now"] = False
    status, out, _ = cli(real_backend, capsys, "requeue", "1")
    assert status == 0 and "requeued dead letter #1" in out
    assert real_backend.client.llen("default_dead") == 1
    drain(real_backend)
    assert runs == [1, 2, 1]  # the requeued task ran, and succeeded
    assert real_backend.client.llen("default_dead") == 1 and real_backend.client.llen("default") == 0


def test_requeue_all_puts_back_oldest_first(real_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    real_backend.app().queue("q").enqueue_many([PyTask(f"{MODULE}:flaky", [i]) for i in range(3)])
    drain(real_backend, "q")
    status, out, _ = cli(real_backend, capsys, "requeue", "--all", "--queue", "q")
    assert status == 0 and "requeued 3 dead letter(s)" in out
    broken["now"] = False
    runs.clear()
    drain(real_backend, "q")
    assert runs == [0, 1, 2]
    assert real_backend.client.llen("q_dead") == 0


def test_purge_needs_yes(real_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    real_backend.app().queue().enqueue_many([PyTask(f"{MODULE}:flaky", [i]) for i in range(2)])
    drain(real_backend)
    status, _, err = cli(real_backend, capsys, "purge")
    assert status == 1 and "add --yes" in err and "2 dead letter(s)" in err and len(err.splitlines()) == 1
    assert real_backend.client.llen("default_dead") == 2
    status, out, _ = cli(real_backend, capsys, "purge", "--yes")
    assert status == 0 and "purged 2" in out
    assert real_backend.client.exists("default_dead") == 0


def test_one_line_errors(real_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(real_backend, capsys, "list")
    assert status == 0 and "has no dead letters" in out
    status, _, err = cli(real_backend, capsys, "show", "0")
    assert status == 1 and err == "delayed dead: error: queue 'default' has no dead letters\n"
    real_backend.app().queue().enqueue(PyTask(f"{MODULE}:flaky", [1]))
    drain(real_backend)
    status, _, err = cli(real_backend, capsys, "requeue", "4")
    assert status == 1 and "no dead letter #4" in err and "it has 1" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["dead", "show", "-1"])
    assert exc.value.code == 2 and len(capsys.readouterr().err.splitlines()) == 1
    status = main(["dead", "list", "--broker", "redis://127.0.0.1:1/0"])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("delayed dead: cannot reach the broker") and len(err.splitlines()) == 1


def test_show_an_undecodable_task(real_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    real_backend.client.rpush("default", b"not msgpack at all")
    real_backend.client.rpush("default_noti", b"1")
    drain(real_backend)
    status, out, _ = cli(real_backend, capsys, "show", "0")
    assert status == 0 and "undecodable" in out and b"not msgpack at all".hex() in out


#: entries a person or another program may leave in N_dead; each must show as undecodable, not stop a listing
MALFORMED = [b"not json", b"[1, 2]", b'{"task": "zz", "reason": "failed"}', b'{"reason": "failed", "time": "soon"}',
             b'{"task": "00"}', b"\xff\xfe"]


def test_malformed_entries_are_shown_as_undecodable_and_skipped(
        real_backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    real_backend.app().queue().enqueue_many([PyTask(f"{MODULE}:flaky", [i]) for i in range(2)])
    drain(real_backend)
    client = real_backend.client
    client.lpush("default_dead", *reversed(MALFORMED))  # entry #i is MALFORMED[i]; then the 2 real ones
    bad = len(MALFORMED)
    # the CLI a user runs, in a subprocess
    listing = subprocess.run([*CliProcess.command_prefix(), "dead", "list", "--broker", real_backend.url],
                             capture_output=True, text=True, timeout=30, cwd=tmp_path,
                             env=CliProcess.environment({}))
    lines = listing.stdout.splitlines()
    assert listing.returncode == 0 and listing.stderr == "" and len(lines) == bad + 2, listing
    assert lines[0] == "   0  undecodable entry (not JSON (Expecting value: line 1 column 1 (char 0))): not json"
    assert lines[bad - 1].startswith("   5  undecodable entry (not JSON (")
    assert "failed" in lines[bad] and "flaky" in lines[bad]
    status, out, _ = cli(real_backend, capsys, "list", "--json")
    entries = json.loads(out)
    assert status == 0 and [entry["reason"] for entry in entries] == ["malformed_entry"] * bad + ["failed"] * 2
    assert entries[3]["error"] == "undecodable entry: field 'time' is 'soon', not a number"
    assert entries[2]["error"] == "undecodable entry: field 'task' is not hex"
    assert entries[1]["error"] == "undecodable entry: a JSON list, not an object"
    status, out, _ = cli(real_backend, capsys, "show", "4")
    assert status == 0 and "undecodable entry: no 'reason' field" in out and '{"task": "00"}' in out
    status, _, err = cli(real_backend, capsys, "requeue", "4")
    assert status == 1 and "is an undecodable entry" in err and len(err.splitlines()) == 1
    status, out, _ = cli(real_backend, capsys, "requeue", "--all")
    assert status == 1 and out.splitlines() == [
        "requeued 2 dead letter(s) on queue 'default'",
        f"skipped {bad} undecodable entries (#0, #1, #2, #3, #4, #5); see 'delayed dead show N'"]
    assert client.lrange("default_dead", 0, -1) == MALFORMED  # left in place
    assert client.llen("default") == 2


class DeadLetterWatcher:
    """Sees every dead letter a worker writes, with its reason."""

    def __init__(self) -> None:
        self.letters: list[tuple[str, DeadLetter]] = []

    @hookimpl
    def delayed_task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        self.letters.append((queue, letter))


def test_dead_lettered_hook_reports_each_entry(backend: Backend) -> None:
    watcher = DeadLetterWatcher()
    app = backend.app(imports=[MODULE], plugins=[watcher], dequeue_timeout=0.2)
    app.queue("q").enqueue_many([PyTask(f"{MODULE}:flaky", [1]), PyTask("os:system", ["true"])])
    app.worker("q").run(burst=True, install_signals=False)
    assert sorted((queue, letter.reason) for queue, letter in watcher.letters) == [("q", "failed"),
                                                                                   ("q", "not_allowed")]
    stored = sorted(DeadLetter.from_json(raw).reason for raw in backend.client.lrange("q_dead", 0, -1))
    assert stored == ["failed", "not_allowed"]
