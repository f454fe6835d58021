"""Poison tasks on Redis: the sweep sets them aside in ``N_poison`` atomically, the core builds their dead
letters, and a sweeper killed in between loses nothing (``delayed sweeper`` as a user runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from delayed_core import DeadLetter
from delayed_redis.errors import BrokerCommandError
from delayed_redis.sweeper import unpack_poisoned
from tests.conftest import Backend

REPO = Path(__file__).resolve().parent.parent
#: a worker id that is not go-delayed's shape and a task with every awkward byte: both must survive exactly
ODD_ID, ODD_TASK = "odd id 7 with spaces", b"\x00 7 \n\xff task"


def lose_twice(backend: Backend, task: bytes = ODD_TASK, holder: str = ODD_ID) -> None:
    """Leave ``task`` recovered once and then held again by the dead ``holder``, with the cap at 1."""
    broker = backend.app().broker("default")
    broker.enqueue([task])
    assert broker.dequeue("a" * 32, 1.0) == task  # never claimed: dead
    assert broker.sweep(max_recoveries=1).requeued == 1
    assert broker.dequeue(holder, 1.0) == task


def sweeper(url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``delayed sweeper --once`` as a user runs it, with the crash-point plugin loaded."""
    command = [sys.executable, "-m", "delayed_core.cli.main", "sweeper", "--once", "--broker", url,
               "--max-recoveries", "1", "--plugin", "delayed_core.testing.crashpoint_plugin"]
    environ = {key: value for key, value in os.environ.items() if not key.startswith("DELAYED_")}
    return subprocess.run(command, cwd=cwd, env={**environ, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=60)


def test_the_set_aside_entry_keeps_any_worker_id_and_task_exactly(real_backend: Backend) -> None:
    lose_twice(real_backend)
    report = real_backend.app().broker("default").sweep(max_recoveries=1)
    (poisoned,) = report.poison
    assert (poisoned.task, poisoned.worker, poisoned.attempts) == (ODD_TASK, ODD_ID, 2)
    assert real_backend.client.lrange("default_poison", 0, -1) == [poisoned.handle]
    assert unpack_poisoned(poisoned.handle) == poisoned
    assert real_backend.client.hlen("default_processing") == 0 and real_backend.client.llen("default") == 0


def test_a_sweeper_killed_before_it_buries_loses_nothing(real_backend: Backend, tmp_path: Path) -> None:
    lose_twice(real_backend)
    killed = sweeper(real_backend.url, tmp_path, DELAYED_CRASHPOINT="before_bury")
    assert killed.returncode == -9, killed.stderr
    assert "crash point before_bury fired" in killed.stderr
    client = real_backend.client
    assert client.llen("default_poison") == 1 and client.llen("default_dead") == 0  # set aside, not lost
    assert client.hlen("default_processing") == 0 and client.llen("default") == 0
    again = sweeper(real_backend.url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "default: requeued 0, poisoned 1, notifications +0, promoted 0\n"
    (raw,) = client.lrange("default_dead", 0, -1)
    letter = DeadLetter.from_json(raw)
    assert (letter.task, letter.reason, letter.worker, letter.attempts, letter.queue) == (
        ODD_TASK, "poison", ODD_ID, 2, "default")
    assert client.exists("default_poison") == 0
    third = sweeper(real_backend.url, tmp_path)
    assert third.stdout == "default: requeued 0, poisoned 0, notifications +0, promoted 0\n"
    assert client.llen("default_dead") == 1  # buried once


def test_a_wrong_key_stops_the_sweep_before_anything_moves(real_backend: Backend) -> None:
    lose_twice(real_backend)
    client, broker = real_backend.client, real_backend.app().broker("default")
    client.set("default_poison", "a string")
    with pytest.raises(BrokerCommandError, match="default_poison is not the list"):
        broker.sweep(max_recoveries=1)
    assert client.hget("default_processing", ODD_ID) == ODD_TASK
    client.delete("default_poison")
    (poisoned,) = broker.sweep(max_recoveries=1).poison
    client.delete("default_dead")
    client.hset("default_dead", "x", "y")
    with pytest.raises(BrokerCommandError, match="default_dead is not the list"):
        broker.bury(poisoned, b'{"reason":"poison"}')
    assert client.lrange("default_poison", 0, -1) == [poisoned.handle]  # still set aside
