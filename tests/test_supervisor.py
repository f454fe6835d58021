"""``delayed worker --processes N``: real parent and child processes against a real redis-server."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from delayed_core import Delayed, PyTask
from delayed_core.cli.main import build_parser
from delayed_core.supervisor import child_command, describe_status
from tests.chaos.processes import CliProcess, poll
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.real_redis
QUEUE = "scale"
TASKS = "tests.scale_tasks"
STARTED = re.compile(r"worker process (\d+) started \(pid (\d+)\)")


def enqueue(url: str, first: int, count: int, seconds: float = 0.0) -> None:
    app = Delayed(url, load_entry_points=False)
    try:
        app.queue(QUEUE).enqueue_many([PyTask(f"{TASKS}:record_pid", [first + i, seconds]) for i in range(count)])
    finally:
        app.close()


def start(server: RedisServer, tmp_path: Path, processes: str = "2", extra: list[str] | None = None,
          env: dict[str, str] | None = None) -> CliProcess:
    args = ["worker", "--broker", server.url, "--queue", QUEUE, "--import", TASKS, "--processes", processes,
            "--dequeue-timeout", "0.5", "--keep-alive-timeout", "5", "--keep-alive-interval", "1",
            "--shutdown-timeout", "10", *(extra or [])]
    parent = CliProcess(args, tmp_path, {"CHAOS_REDIS_URL": server.url, **(env or {})})
    return parent


def child_pids(parent: CliProcess) -> dict[int, list[int]]:
    """Child index -> the pids it ran under, in order, from the parent's log."""
    pids: dict[int, list[int]] = {}
    for index, pid in STARTED.findall(parent.log()):
        pids.setdefault(int(index), []).append(int(pid))
    return pids


def serving(parent: CliProcess) -> int:
    return parent.log().count("worker serving queue")


def ran_pids(server: RedisServer) -> dict[int, int]:
    """task id -> pid of the process that ran it (fails on a task run twice)."""
    result: dict[int, int] = {}
    for entry in server.client().lrange("ran", 0, -1):
        task_id, pid = map(int, entry.split())
        assert task_id not in result, f"task {task_id} ran twice"
        result[task_id] = pid
    return result


def test_two_processes_drain_a_queue_from_two_pids(real_redis: RedisServer, tmp_path: Path) -> None:
    parent = start(real_redis, tmp_path)
    try:
        poll(lambda: serving(parent) == 2, 20, message="two workers online")
        enqueue(real_redis.url, 0, 200, 0.005)
        poll(lambda: real_redis.client().llen("ran") == 200, 30, message="200 tasks ran")
        ran = ran_pids(real_redis)
        assert sorted(ran) == list(range(200))
        children = {pids[0] for pids in child_pids(parent).values()}
        assert len(children) == 2
        assert set(ran.values()) == children, "both children took tasks, nobody else did"
        assert parent.process.pid not in children
    finally:
        parent.terminate()
    assert parent.wait(20) == 0
    assert "Traceback" not in parent.log()


def test_burst_with_two_processes_exits_0_once_the_queue_is_empty(real_redis: RedisServer, tmp_path: Path) -> None:
    enqueue(real_redis.url, 0, 50)
    parent = start(real_redis, tmp_path, extra=["--burst"])
    assert parent.wait(30) == 0
    assert sorted(ran_pids(real_redis)) == list(range(50))
    assert "died after" not in parent.log(), "a child's exit 0 in burst mode is not a crash"


def test_a_killed_child_is_restarted_and_work_continues(real_redis: RedisServer, tmp_path: Path) -> None:
    parent = start(real_redis, tmp_path)
    try:
        poll(lambda: serving(parent) == 2, 20, message="two workers online")
        victim = child_pids(parent)[0][0]
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        poll(lambda: len(child_pids(parent)[0]) == 2 and serving(parent) == 3, 20, message="child 0 restarted")
        log = parent.log()
        assert f"worker process 0 (pid {victim}) died after" in log
        assert "killed by SIGKILL; restarting in" in log
        replacement = child_pids(parent)[0][1]
        enqueue(real_redis.url, 0, 100, 0.005)
        poll(lambda: real_redis.client().llen("ran") == 100, 30, message="100 tasks ran after the restart")
        ran = ran_pids(real_redis)
        assert victim not in ran.values()
        assert set(ran.values()) <= {replacement, child_pids(parent)[1][0]}
    finally:
        parent.terminate()
    assert parent.wait(20) == 0


def test_sigterm_stops_every_child_gracefully_and_loses_nothing(real_redis: RedisServer, tmp_path: Path) -> None:
    client = real_redis.client()
    parent = start(real_redis, tmp_path, extra=["--slots", "2"])
    poll(lambda: serving(parent) == 2, 20, message="two workers online")
    enqueue(real_redis.url, 0, 40, 0.4)
    poll(lambda: client.llen("started") >= 4, 20, message="every slot busy")
    parent.terminate()
    assert parent.wait(30) == 0
    log = parent.log()
    assert "got SIGTERM: stopping 2 worker process(es) gracefully" in log
    assert log.count("got SIGTERM: finishing running tasks") == 2, "each child got the signal once"
    assert "died after" not in log and "Traceback" not in log
    for pids in child_pids(parent).values():
        assert len(pids) == 1
        assert subprocess.run(["kill", "-0", str(pids[0])], capture_output=True).returncode != 0, "child exited"
    started = sorted(int(x) for x in client.lrange("started", 0, -1))
    # Every task that started finished (graceful), the rest wait in the queue: none lost, none run twice.
    assert sorted(ran_pids(real_redis)) == started
    assert client.llen(QUEUE) == 40 - len(started) == client.llen(f"{QUEUE}_noti")
    assert client.hlen(f"{QUEUE}_processing") == 0
    assert client.zcard(f"{QUEUE}_workers") == 0


def test_sigint_then_sighup_are_both_forwarded_and_running_tasks_go_back(real_redis: RedisServer,
                                                                          tmp_path: Path) -> None:
    client = real_redis.client()
    parent = start(real_redis, tmp_path)
    poll(lambda: serving(parent) == 2, 20, message="two workers online")
    enqueue(real_redis.url, 0, 6, 30)  # far longer than the test: they can only be handed back
    poll(lambda: client.llen("started") == 2, 20, message="both workers busy")
    parent.process.send_signal(signal.SIGINT)
    poll(lambda: parent.log().count("got SIGINT: finishing running tasks") == 2, 10, message="first forwarded")
    parent.process.send_signal(signal.SIGHUP)
    assert parent.wait(20) == 0, "the second signal stops the children without waiting for their tasks"
    log = parent.log()
    assert "got SIGHUP again: forwarding it" in log
    assert log.count("got SIGHUP again: handing running tasks back") == 2
    assert client.llen("ran") == 0
    assert client.llen(QUEUE) == 6 == client.llen(f"{QUEUE}_noti"), "the two running tasks are back in the queue"
    assert client.hlen(f"{QUEUE}_processing") == 0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_sums_the_children(real_redis: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    parent = start(real_redis, tmp_path, extra=["--plugin", "delayed_plugins.metrics"],
                   env={"DELAYED_METRICS_PORT": str(port)})
    try:
        poll(lambda: serving(parent) == 2, 20, message="two workers online")
        enqueue(real_redis.url, 0, 120, 0.005)
        poll(lambda: real_redis.client().llen("ran") == 120, 30, message="120 tasks ran")
        ran = ran_pids(real_redis)
        per_child = {pid: list(ran.values()).count(pid) for pid in set(ran.values())}
        assert len(per_child) == 2 and all(per_child.values()), per_child
        labels = (("function", f"{TASKS}:record_pid"), ("queue", QUEUE))
        samples: dict = {}

        def counted() -> bool:
            samples.update(scrape(port))
            return samples.get(("delayed_tasks_succeeded_total", labels)) == 120

        poll(counted, 10, message="the endpoint counts 120 successes")
        assert samples[("delayed_tasks_started_total", labels)] == 120
        assert samples[("delayed_task_duration_seconds_count", labels)] == 120
        assert samples[("delayed_queue_length", (("queue", QUEUE),))] == 0  # gauges read by the parent
        assert parent.log().count("metrics served on") == 1, "only the parent listens"
    finally:
        parent.terminate()
    assert parent.wait(20) == 0


def test_children_dying_at_once_are_restarted_with_backoff_not_in_a_hot_loop(tmp_path: Path) -> None:
    script = ("import logging, sys; logging.basicConfig(level='INFO');"
              "from delayed_core.supervisor import Supervisor;"
              "sys.exit(Supervisor([sys.executable, '-c', 'raise SystemExit(3)'], 2, 1.0).run())")
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        process.wait(3.5)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    starts = stderr.count("started (pid")
    # Delays 0.5, 1, 2 s (+10% jitter) per child: at most 3-4 starts each in 3.5 s, never hundreds.
    assert 4 <= starts <= 8, stderr
    assert "exit status 3; restarting in" in stderr
    assert process.returncode == 1, "a child that failed makes the parent's status non-zero"


def test_child_command_repeats_the_flags_without_processes() -> None:
    argv = ["worker", "--broker", "redis://h:1/0", "--queue", "q", "--queue", "r", "--import", "a", "--import", "b",
            "--processes", "3", "--slots", "2", "--timeout", "1.5", "--burst", "--allow-any-import"]
    args = build_parser().parse_args(argv)
    command = child_command(args.parser, args, "processes")
    assert command[:3] == [sys.executable, "-m", "delayed_core.cli.main"]
    reparsed = build_parser().parse_args(command[3:])
    assert "--processes" not in command and reparsed.processes == 1
    for name in ("broker_url", "queues", "imports", "slots", "timeout", "burst", "allow_any_import"):
        assert getattr(reparsed, name) == getattr(args, name), name


def test_processes_auto_and_bad_values(tmp_path: Path) -> None:
    assert build_parser().parse_args(["worker", "--processes", "auto"]).processes >= 1
    for bad in ("0", "-1", "many"):
        result = subprocess.run([*CliProcess.command_prefix(), "worker", "--processes", bad],
                                capture_output=True, text=True, cwd=tmp_path, timeout=30)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--processes" in lines[0], result.stderr


def test_describe_status() -> None:
    assert describe_status(3) == "exit status 3"
    assert describe_status(-signal.SIGKILL) == "killed by SIGKILL"
