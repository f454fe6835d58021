"""Limits a user can set on the command line, and what they promise (issue 10, item 8)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import delayed_redis.connection as connection
from delayed_core import Delayed
from tests.chaos.processes import CliProcess
from tests.conftest import Backend


@pytest.mark.real_redis
def test_a_dequeue_timeout_above_the_socket_timeout_is_not_a_broker_error(
        real_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # The socket timeout is 30 s in production; shrunk here so the test takes seconds, not minutes.
    monkeypatch.setattr(connection, "SOCKET_TIMEOUT", 1.0)
    broker = Delayed(real_backend.url, load_entry_points=False).broker("q")
    started = time.monotonic()
    assert broker.dequeue("a" * 32, timeout=2.5) is None  # before the fix: BrokerUnavailable (timeout)
    assert time.monotonic() - started < 2.0  # one BLPOP, capped inside the socket timeout
    broker.enqueue([b"task"])
    assert broker.dequeue("a" * 32, timeout=2.5) == b"task"


def help_of(command: str, tmp_path: Path) -> str:
    done = subprocess.run([*CliProcess.command_prefix(), command, "--help"], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path, env=CliProcess.environment({"COLUMNS": "200"}))
    assert done.returncode == 0
    return " ".join(done.stdout.split())


def test_max_recoveries_help_says_what_the_sweeper_does(tmp_path: Path) -> None:
    # The behaviour, N recoveries then a dead letter at the N+1th loss, is tested in test_poison.py.
    assert ("recover a task at most N times from workers that stopped holding it; at its next loss, "
            "dead-letter it as poison; 0 = no limit (default 5)") in help_of("sweeper", tmp_path)
    assert "one Redis BLPOP blocks at most 25 s, then the slot blocks again" in help_of("worker", tmp_path)
