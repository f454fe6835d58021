"""``delayed doctor``: every finding is produced here by creating its exact condition on a real redis-server,
then running the command as a user does."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from delayed_core.deadletter import DeadLetter
from delayed_redis import doctor_acl
from tests.support import cli
from tests.support.redis_server import RedisServer, require_redis_server

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "q"
TASK = msgpack.packb(("tests.otel_tasks:ok", [1]))
WORKER_ID = "ab" * 16


def run_delayed(*args: str, cwd: Path) -> Any:
    """``delayed ARGS`` as a user runs it, with this repository importable (for the test plugin)."""
    return cli.delayed(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT)})


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start a private redis-server with extra arguments; every one started is removed afterwards."""
    require_redis_server()
    servers: list[RedisServer] = []

    def starter(*args: str, appendonly: bool = False) -> RedisServer:
        server = RedisServer(list(args), appendonly=appendonly).start()
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.cleanup()


def doctor(server: RedisServer, tmp_path: Path, *args: str, url: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Run ``delayed doctor --json`` on one queue; return the exit status and the findings."""
    result = run_delayed("doctor", "--broker", url or server.url, "--queue", QUEUE, "--json", *args, cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["findings"]


def only(findings: list[dict[str, Any]], check: str) -> dict[str, Any]:
    matching = [finding for finding in findings if finding["check"] == check]
    assert len(matching) == 1, (check, findings)
    return matching[0]


def test_a_healthy_redis_has_no_error_and_exits_0(start: Any, tmp_path: Path) -> None:
    server = start("--notify-keyspace-events", "Ex", appendonly=True)
    status, findings = doctor(server, tmp_path)
    assert status == 0
    assert not [f for f in findings if f["severity"] in ("error", "warning")], findings
    version = server.client().info("server")["redis_version"]
    assert only(findings, "redis-version")["message"] == f"Redis {version}"
    assert only(findings, "maxmemory-policy")["severity"] == "ok"
    assert only(findings, "persistence")["message"] == "AOF is on"
    keyspace = only(findings, "keyspace-events")
    assert keyspace["severity"] == "info" and keyspace["details"]["expired_events"] is True
    assert only(findings, "acl")["severity"] == "ok"
    assert only(findings, "notifications")["severity"] == "ok"
    assert only(findings, "dead-letters")["message"] == "no dead letters"


def test_eviction_policy_is_an_error(start: Any, tmp_path: Path) -> None:
    server = start("--maxmemory-policy", "allkeys-lru", appendonly=True)
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "maxmemory-policy")
    assert status == 1 and finding["severity"] == "error"
    assert finding["details"]["policy"] == "allkeys-lru" and "noeviction" in finding["fix"]


def test_no_persistence_is_a_warning_and_expiry_events_off_are_reported(start: Any, tmp_path: Path) -> None:
    server = start()  # the helper starts with --save "" --appendonly no
    assert server.client().config_get("save")["save"] == ""
    status, findings = doctor(server, tmp_path)
    assert status == 0
    persistence = only(findings, "persistence")
    assert persistence["severity"] == "warning" and "appendonly yes" in persistence["fix"]
    keyspace = only(findings, "keyspace-events")
    assert keyspace["details"]["expired_events"] is False and "notify-keyspace-events Ex" in keyspace["fix"]


def test_rdb_only_is_information(start: Any, tmp_path: Path) -> None:
    server = start("--save", "3600 1")
    _, findings = doctor(server, tmp_path)
    assert only(findings, "persistence")["severity"] == "info"


def test_missing_notifications_are_an_error_that_repair_fixes(start: Any, tmp_path: Path) -> None:
    server = start()
    client = server.client()
    client.rpush(QUEUE, TASK, TASK)
    client.rpush(f"{QUEUE}_noti", "1")
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "notifications")
    assert status == 1 and finding["severity"] == "error" and finding["repairable"]
    assert finding["details"] == {"length": 2, "notifications": 1}
    status, findings = doctor(server, tmp_path, "--repair")
    assert status == 0
    assert only(findings, "repair")["details"]["notifications"] == 1
    assert only(findings, "notifications")["severity"] == "ok"
    assert client.llen(f"{QUEUE}_noti") == 2


def test_surplus_notifications_are_a_warning(start: Any, tmp_path: Path) -> None:
    server = start()
    server.client().rpush(f"{QUEUE}_noti", "1", "1", "1")
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "notifications")
    assert status == 0 and finding["severity"] == "warning" and finding["details"]["notifications"] == 3


def test_a_task_held_by_a_dead_worker_with_its_age_and_repair_requeues_it(start: Any, tmp_path: Path) -> None:
    server = start()
    client = server.client()
    client.hset(f"{QUEUE}_processing", WORKER_ID, TASK)
    client.zadd(f"{QUEUE}_workers", {WORKER_ID: int((time.time() - 30) * 1000)})  # last keep-alive 30 s ago
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "dead-worker")
    assert status == 0 and finding["severity"] == "warning" and finding["repairable"]
    assert 29 <= finding["details"]["seconds_since_keep_alive"] <= 60
    assert "tests.otel_tasks:ok" in finding["message"] and WORKER_ID in finding["message"]
    # Silent far longer than keep_alive_timeout + 2 sweeps: no sweeper runs, an error.
    client.zadd(f"{QUEUE}_workers", {WORKER_ID: int((time.time() - 600) * 1000)})
    status, findings = doctor(server, tmp_path)
    assert status == 1 and only(findings, "dead-worker")["severity"] == "error"
    status, findings = doctor(server, tmp_path, "--repair")
    assert status == 0 and only(findings, "repair")["details"]["requeued"] == 1
    assert not [f for f in findings if f["check"] == "dead-worker"]
    assert client.lrange(QUEUE, 0, -1) == [TASK] and client.hlen(f"{QUEUE}_processing") == 0


def test_a_dead_holder_that_is_not_ours_has_no_known_age(start: Any, tmp_path: Path) -> None:
    server = start()
    server.client().hset(f"{QUEUE}_processing", "7", TASK)  # a delayed 1.2 worker id, long gone
    _, findings = doctor(server, tmp_path)
    finding = only(findings, "dead-worker")
    assert "age is unknown" in finding["message"] and "seconds_since_keep_alive" not in finding["details"]


def test_an_entry_left_by_a_live_go_worker(start: Any, tmp_path: Path) -> None:
    # What go-delayed leaves: its live id (SETEX'd, not in our registry) still maps to the last task it ran.
    server = start()
    client = server.client()
    client.set(WORKER_ID, "1", ex=60)
    client.hset(f"{QUEUE}_processing", WORKER_ID, TASK)
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "go-worker-entry")
    assert status == 0 and finding["severity"] == "warning" and not finding["repairable"]
    assert f"HDEL {QUEUE}_processing {WORKER_ID}" in finding["fix"]
    # A live pydelayed worker (in the registry) holding a task is normal: no finding.
    client.zadd(f"{QUEUE}_workers", {WORKER_ID: int(time.time() * 1000)})
    _, findings = doctor(server, tmp_path)
    assert not [f for f in findings if f["check"] in ("go-worker-entry", "dead-worker")]


def test_dead_letter_growth_and_a_full_list(start: Any, tmp_path: Path) -> None:
    server = start()
    client = server.client()
    old = DeadLetter(TASK, "failed", "ValueError: x", queue=QUEUE, time=time.time() - 7200).to_json()
    client.lpush(f"{QUEUE}_dead", old)
    _, findings = doctor(server, tmp_path)
    finding = only(findings, "dead-letters")
    assert finding["severity"] == "info" and finding["details"] == {"total": 1, "last_hour": 0, "last_day": 1}
    for reason in ("failed", "failed", "not_allowed"):
        client.lpush(f"{QUEUE}_dead", DeadLetter(TASK, reason, "x", queue=QUEUE).to_json())
    status, findings = doctor(server, tmp_path)
    finding = only(findings, "dead-letters")
    assert status == 0 and finding["severity"] == "warning"
    assert finding["details"] == {"total": 4, "last_hour": 3, "last_day": 4}
    assert "(failed 2, not_allowed 1)" in finding["message"]
    (tmp_path / "delayed.toml").write_text("dead_letter_max = 4\n")
    _, findings = doctor(server, tmp_path)
    assert only(findings, "dead-letters-full")["details"] == {"max": 4}


#: the documented minimal rule (docs/reliability.md) with what newer scripts need, but no EVALSHA
MINIMAL_WITHOUT_EVALSHA = [
    "on", ">workerpass", "resetkeys", f"~{QUEUE}", f"~{QUEUE}_*", "~" + "[0-9a-f]" * 32, "~delayed_task:*",
    "~delayed:*", "-@all", "+@list",
    "+@hash", "+@sortedset", "+@string", "+del", "+exists", "+expire", "+pexpire", "+time", "+script|load",
    "+multi", "+exec",
]


def test_acl_rights_the_user_lacks(start: Any, tmp_path: Path) -> None:
    server = start()
    server.client().execute_command("ACL", "SETUSER", "qworker", *MINIMAL_WITHOUT_EVALSHA)
    status, findings = doctor(server, tmp_path, "--acl-user", "qworker")
    denied = {f["details"]["command"]: f for f in findings if f["check"] == "acl"}
    assert status == 1
    assert [command for command, f in denied.items() if f["severity"] == "error"] == ["evalsha"]
    assert denied["evalsha"]["fix"] == "ACL SETUSER qworker +evalsha"
    # The recommended extras are warnings: pydelayed degrades without them.
    assert {"publish", "subscribe", "client|id", "client|unblock", "scan"} <= set(denied)
    assert all(denied[c]["severity"] == "warning" for c in ("publish", "subscribe", "client|id", "scan"))
    text = run_delayed("doctor", "--broker", server.url, "--queue", QUEUE, "--acl-user", "qworker", cwd=tmp_path)
    assert re.search(r"^ERROR   acl \[q\]: user 'qworker' may not send EVALSHA .*\(fix: ACL SETUSER qworker "
                     r"\+evalsha\)$", text.stdout, re.MULTILINE), text.stdout


def test_a_restricted_user_is_told_how_to_get_its_acl_checked(start: Any, tmp_path: Path) -> None:
    server = start()
    server.client().execute_command("ACL", "SETUSER", "qworker", *MINIMAL_WITHOUT_EVALSHA, "+evalsha")
    url = f"redis://qworker:workerpass@127.0.0.1:{server.port}/0"
    status, findings = doctor(server, tmp_path, url=url)
    acl = only(findings, "acl")
    assert status == 0 and acl["severity"] == "warning" and "--acl-user qworker" in acl["fix"]
    assert only(findings, "config")["severity"] == "warning"  # CONFIG GET is not allowed either
    assert only(findings, "notifications")["severity"] == "ok"  # the queue checks still run


#: a command named in the call: redis.call('hset', ...)
CALLED = re.compile(r"redis\.p?call\(\s*'(\w+)'")
#: a command looked up in a table of names: redis.pcall(length_of[kind], ...) (the prelude's type checks)
CALLED_FROM_TABLE = re.compile(r"redis\.p?call\(\s*(\w+)\[")
#: any other first argument, which this test could not read
CALLED_OTHERWISE = re.compile(r"redis\.p?call\(\s*(?!'|\w+\[)([^,)]*)")


def commands_called(source: str) -> set[str]:
    """Lower-case names of the commands a Lua source sends: named in the call, or the string values of the
    local table a call looks its name up in."""
    assert not CALLED_OTHERWISE.findall(source), CALLED_OTHERWISE.findall(source)
    names = set(CALLED.findall(source))
    for table in set(CALLED_FROM_TABLE.findall(source)):
        literal = re.search(rf"local {table} = \{{([^}}]*)\}}", source)
        assert literal, f"{table}: not a local table of command names in the same source"
        names |= set(re.findall(r"'(\w+)'", literal.group(1)))
    return {name.lower() for name in names}


def test_every_command_the_scripts_send_is_in_the_acl_table() -> None:
    sources = (ROOT / "delayed_redis" / "lua").glob("*.lua")
    called = set().union(*(commands_called(path.read_text()) for path in sources))
    assert {"llen", "hlen", "zcard"} <= called  # the prelude's type checks, through its length_of table
    assert called <= doctor_acl.commands_listed(), called - doctor_acl.commands_listed()


def test_every_command_the_tracking_scripts_send_to_a_record_is_in_the_acl_table() -> None:
    """The task records are keys of their own (``~delayed_task:*``): each command the tracking scripts send
    to one is listed on a record, so that `delayed doctor` checks the user may send it there."""
    # the record is `rec` or `track_key` in the scripts, `key` in the record helpers (_record.lua,
    # _record_state.lua, _settle.lua), and KEYS[1] in those whose header says so; the end is announced
    # on it by the prelude's announce_end (PUBLISH, or SPUBLISH in the cluster layout)
    record = re.compile(r"redis\.p?call\(\s*'(\w+)',\s*(?:rec|track_key|key)\b")
    first_key = re.compile(r"redis\.p?call\(\s*'(\w+)',\s*KEYS\[1\]")
    announced = re.compile(r"announce_end\(\s*(?:rec|track_key|key|KEYS\[1\])\s*\)")
    called: set[str] = set()
    lua = ROOT / "delayed_redis" / "lua"
    for path in [*lua.glob("track_*.lua"), lua / "_record.lua", lua / "_record_state.lua", lua / "_settle.lua"]:
        text = path.read_text()
        called |= {name.lower() for name in record.findall(text)}
        if re.search(r"^-- KEYS\[1\]\s+(?:the record|delayed_task:ID)", text, re.MULTILINE):
            called |= {name.lower() for name in first_key.findall(text)}
        if announced.search(text):
            called |= {"publish", "spublish"}
    assert {"hset", "hget", "hgetall", "pexpire", "publish", "spublish", "set", "get"} <= called, called
    assert called <= doctor_acl.commands_listed("record"), called - doctor_acl.commands_listed("record")


def test_text_output_is_one_line_per_finding_with_severity(start: Any, tmp_path: Path) -> None:
    server = start("--maxmemory-policy", "volatile-lru")
    result = run_delayed("doctor", "--broker", server.url, "--queue", QUEUE, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines and all(re.match(r"^(OK|INFO|WARNING|ERROR) +[a-z-]+( \[q\])?: ", line) for line in lines), lines
    assert any(line.startswith("ERROR   maxmemory-policy: volatile-lru") for line in lines)


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    result = run_delayed("doctor", "--broker", f"redis://127.0.0.1:{free_port()}/0", cwd=tmp_path)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("delayed doctor: cannot reach the broker")


def test_a_plugin_adds_its_own_checks(start: Any, tmp_path: Path) -> None:
    server = start(appendonly=True)
    status, findings = doctor(server, tmp_path, "--plugin", "tests.support.doctor_plugin")
    assert status == 1 and only(findings, "third-party") == {
        "check": "third-party", "severity": "error", "message": "checked q", "fix": "nothing", "queue": "q",
        "repairable": False, "details": {}}
