"""``delayed doctor --acl-user`` in the cluster key layout: nothing missing under the rules docs/reliability.md
documents (read from the docs), and every right taken out of the minimal rule named by an error finding
with the rule that grants it back; on one redis-server and on every primary of a Redis Cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis

from delayed_core.doctor import Finding, Severity
from delayed_redis.doctor_acl import check_acl
from delayed_redis.doctor_acl_uses import argv_for, uses_for
from delayed_redis.keys import CLUSTER, QueueKeys
from tests.support import cli
from tests.support.redis_cluster import LocalCluster, flush
from tests.support.redis_server import RedisServer
from tests.test_acl_cluster import CLUSTER_CLIENT, QUEUE, USER, documented_rule, set_rule

KEYS = QueueKeys.for_queue(QUEUE, CLUSTER)


def command_of(argv: list[str]) -> str:
    """The ACL name of a command line: ``client|id``, ``rpush``."""
    name = argv[0].lower()
    return f"{name}|{argv[1].lower()}" if argv[0] in ("SCRIPT", "CLIENT", "CLUSTER") else name


#: every command the cluster layout needs on one Redis, as the doctor names them
REQUIRED = {command_of(argv_for(use, KEYS)) for use in uses_for(CLUSTER, False) if use.required}
#: the optional ones the minimal rule leaves out (the recommended rule grants them)
OPTIONAL_LEFT_OUT = {"publish", "subscribe", "spublish", "ssubscribe", "sunsubscribe", "scan", "sadd", "smembers"}


def errors(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.details["command"], f.details["rule"]) for f in findings if f.severity == Severity.ERROR}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder whose delayed.toml picks the cluster key layout."""
    (tmp_path / "delayed.toml").write_text('key_layout = "cluster"\n')
    return tmp_path


def doctor(url: str, folder: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    """``delayed doctor --json --acl-user qworker`` as a user runs it: the exit status and the acl findings."""
    result = cli.delayed("doctor", "--broker", url, "--queue", QUEUE, "--acl-user", USER, "--json", *args, cwd=folder)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, [f for f in json.loads(result.stdout)["findings"] if f["check"] == "acl"]


@pytest.fixture
def server(servers: list[RedisServer]) -> RedisServer:
    """A private redis-server (ACL users are set on it)."""
    servers.append(RedisServer().start())
    return servers[-1]


def test_the_recommended_rule_gets_no_acl_finding_but_ok(server: RedisServer, folder: Path) -> None:
    set_rule(server.client(), "recommended")
    _, findings = doctor(server.url, folder)
    assert [f["severity"] for f in findings] == ["ok"], findings
    assert findings[0]["message"] == f"user {USER!r} may send every command pydelayed uses on {QUEUE}"


def test_the_minimal_rule_gets_warnings_for_the_optional_rights_only(server: RedisServer, folder: Path) -> None:
    set_rule(server.client(), "minimal")
    status, findings = doctor(server.url, folder)
    assert status == 0
    assert {f["severity"] for f in findings} == {"warning"}
    assert {f["details"]["command"] for f in findings} == OPTIONAL_LEFT_OUT


def test_a_missing_right_is_an_error_line_with_its_fix(server: RedisServer, folder: Path) -> None:
    """The cluster layout's wait needs CLIENT ID (go-delayed's only for a prompt stop, a warning there)."""
    minimal = documented_rule("cluster-minimal")
    server.client().execute_command("ACL", "SETUSER", USER, *[w for w in minimal if w != "+client|id"])
    text = cli.delayed("doctor", "--broker", server.url, "--queue", QUEUE, "--acl-user", USER, cwd=folder)
    assert text.returncode == 1
    (line,) = [line for line in text.stdout.splitlines() if line.startswith("ERROR   acl")]
    assert re.fullmatch(r"ERROR   acl \[q\]: user 'qworker' may not send CLIENT ID \(.*; workers take no task\): "
                        r".*\(fix: ACL SETUSER qworker \+client\|id\)", line), line


def removals() -> list[str]:
    """Each right of the documented minimal rule (the user's own settings aside)."""
    return [word for word in documented_rule("cluster-minimal") if word[0] in "+~" and word != "+@all"]


@pytest.mark.parametrize("right", removals())
def test_each_right_of_the_minimal_rule_is_named_when_missing(server: RedisServer, right: str) -> None:
    """Without one right of the minimal rule: an error for each required command it grants, with that right
    (or, for the key pattern, the pattern) as the fix, and no other error."""
    admin = server.client()
    rule = [word for word in documented_rule("cluster-minimal") if word != right]
    if right == "~{q}*":  # every key of the queue but its list
        rule.append("~{q}_*")
    admin.execute_command("ACL", "SETUSER", USER, "reset", *rule)
    findings = check_acl(admin, (7,), [QUEUE], USER, CLUSTER)
    if right.startswith("~"):
        on_list = {command_of(argv_for(use, KEYS)) for use in uses_for(CLUSTER, False)
                   if use.required and KEYS.queue in argv_for(use, KEYS)}
        expected = {(command, "~{q}*") for command in on_list}
    else:
        granted = ({_text(name) for name in admin.execute_command("ACL", "CAT", right[2:])}
                   if right.startswith("+@") else {right[1:]})
        expected = {(command, f"+{command}") for command in REQUIRED & granted}
    assert expected and errors(findings) == expected


def test_subscribing_without_publishing_is_an_error(server: RedisServer) -> None:
    """A waiter that may SSUBSCRIBE sleeps until its timeout unless the worker may SPUBLISH."""
    admin = server.client()
    set_rule(admin, "minimal", "+ssubscribe", "+sunsubscribe", "&{q}_task:*")
    findings = check_acl(admin, (7,), [QUEUE], USER, CLUSTER)
    assert errors(findings) == {("spublish", "+spublish")}
    (finding,) = [f for f in findings if f.severity == Severity.ERROR]
    assert "without this result() sleeps until its timeout" in finding.message
    set_rule(admin, "minimal", "+spublish", "+ssubscribe", "+sunsubscribe")  # no channel: both refused
    findings = check_acl(admin, (7,), [QUEUE], USER, CLUSTER)
    assert errors(findings) == set()
    assert {(f.details["command"], f.details["rule"]) for f in findings if "{q}_task" in f.message} == {
        ("spublish", "&{q}_task:*"), ("ssubscribe", "&{q}_task:*")}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.timeout(120)
def test_every_primary_of_a_redis_cluster_is_checked(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    """ACL users are per node: the doctor checks each primary. With the rules and the cluster client's
    rights on every node, one ok per node; a node whose user lacks ``+cluster|slots`` is named."""
    flush(redis_cluster)
    nodes = redis_cluster.live_nodes()
    try:
        for node in nodes:
            set_rule(node.client(), "recommended", *CLUSTER_CLIENT)
        _, findings = doctor(redis_cluster.url, tmp_path)
        assert sorted((f["severity"], f["details"]["node"]) for f in findings) == sorted(
            ("ok", node.address) for node in nodes)
        set_rule(nodes[1].client(), "recommended", "+command")
        status, findings = doctor(redis_cluster.url, tmp_path)
        assert status == 1
        assert [(f["details"]["node"], f["details"]["command"], f["details"]["rule"]) for f in findings
                if f["severity"] == "error"] == [(nodes[1].address, "cluster|slots", "+cluster|slots")]
    finally:
        for node in nodes:
            node.client().execute_command("ACL", "DELUSER", USER)


def test_go_delayed_layout_keeps_its_own_names(server: RedisServer) -> None:
    """The go-delayed layout is still checked on its keys: a user of the cluster rule lacks them all."""
    admin = server.client()
    set_rule(admin, "minimal")
    findings = check_acl(admin, (7,), [QUEUE], USER)
    rules = {rule for _, rule in errors(findings)}
    assert rules == {"~q", "~q ~q_*", "~q_*", "~" + "[0-9a-f]" * 32, "~delayed_task:*"}, rules
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis(port=server.port, username=USER, password="secret").get("q")
