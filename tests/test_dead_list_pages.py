"""``delayed dead list`` shows a page of a long dead-letter list (newest 100 by default), says how many
more there are, and ``--limit`` / ``--offset`` move through it; run as a user runs it, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from delayed_core.deadletter import DeadLetter
from tests.support.cli import delayed
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.real_redis


def fill(server: RedisServer, count: int) -> None:
    """``count`` dead letters in queue ``default``; entry #i (newest first) is the task ``m:f{i}``."""
    letters = [DeadLetter(b"\x90", "failed", f"E{i}", func=f"m:f{i}", queue="default").to_json()
               for i in reversed(range(count))]
    server.client().lpush("default_dead", *letters)


def test_the_newest_hundred_by_default_and_how_many_more(real_redis: RedisServer, tmp_path: Path) -> None:
    fill(real_redis, 130)
    done = delayed("dead", "list", "--broker", real_redis.url, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 100
    assert lines[0].startswith("   0  ") and "m:f0 " in lines[0] and "m:f99 " in lines[99]
    assert done.stderr.strip() == ("(entries #0 to #99 of queue 'default', newest first; 30 more: --offset 100, "
                                   "or --limit 0 for all)")
    rest = delayed("dead", "list", "--offset", "100", "--broker", real_redis.url, cwd=tmp_path)
    assert [line.split()[0] for line in rest.stdout.splitlines()] == [str(i) for i in range(100, 130)]
    assert rest.stderr == ""
    everything = delayed("dead", "list", "--limit", "0", "--broker", real_redis.url, cwd=tmp_path)
    assert len(everything.stdout.splitlines()) == 130 and everything.stderr == ""


def test_json_pages_keep_stdout_one_document(real_redis: RedisServer, tmp_path: Path) -> None:
    fill(real_redis, 12)
    done = delayed("dead", "list", "--json", "--limit", "5", "--offset", "4", "--broker", real_redis.url, cwd=tmp_path)
    entries = json.loads(done.stdout)
    assert [entry["index"] for entry in entries] == [4, 5, 6, 7, 8]
    assert [entry["func"] for entry in entries] == [f"m:f{i}" for i in range(4, 9)]
    assert "3 more: --offset 9" in done.stderr
    past = delayed("dead", "list", "--offset", "50", "--broker", real_redis.url, cwd=tmp_path)
    assert past.returncode == 0 and past.stdout.strip() == "queue 'default' has no dead letters from #50 on"
