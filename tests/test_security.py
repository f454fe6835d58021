"""Security: the function allowlist, Redis passwords, a least-privilege ACL user, and TLS."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from delayed_core import Delayed, PyTask
from delayed_core.deadletter import Reason
from tests.chaos import allowed_tasks
from tests.chaos.processes import TASKS_MODULE, CliProcess, poll, sweeper_args, worker_args
from tests.conftest import Backend
from tests.support.redis_server import RedisServer, free_port, require_redis_server

QUEUE = "sec"
ALLOWED = "tests.chaos.allowed_tasks"
#: worker ids are 32 hex chars in the root keyspace; this glob matches them and nothing else
WORKER_ID_PATTERN = "[0-9a-f]" * 32
#: the least-privilege ACL rule for a pydelayed user on queue "sec" (documented in docs/reliability.md)
ACL_RULE = ["on", ">workerpass", "resetkeys", f"~{QUEUE}", f"~{QUEUE}_*", f"~{WORKER_ID_PATTERN}",
            "~delayed_task:*", "~delayed:*", "-@all",
            "+@list", "+@hash", "+@sortedset", "+@string", "+del", "+exists", "+expire", "+pexpire", "+time",
            "+evalsha", "+multi", "+exec",
            "+script|load"]


def dead_letters(client: object, queue: str = QUEUE) -> list[dict[str, object]]:
    """The queue's dead letters, decoded."""
    return [json.loads(raw) for raw in client.lrange(f"{queue}_dead", 0, -1)]  # type: ignore[attr-defined]


@pytest.fixture
def server_factory() -> Iterator[list[RedisServer]]:
    """Dedicated redis-servers (password, ACL, TLS), removed after the test."""
    require_redis_server()
    servers: list[RedisServer] = []
    yield servers
    for server in servers:
        server.cleanup()


def run_burst_worker(url: str, tmp_path: Path, record_url: str, extra: list[str] | None = None) -> CliProcess:
    """A ``--burst`` worker over ``url``; returns once it exited 0."""
    worker = CliProcess(worker_args(url, QUEUE, extra=["--burst", *(extra or [])]), tmp_path,
                        {"CHAOS_REDIS_URL": record_url})
    assert worker.wait(20) == 0, worker.log()
    return worker


# -- the allowlist --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "os:system", "builtins:eval", "subprocess:run", "posix:system", f"{ALLOWED}:_private",
    f"{ALLOWED}:system",  # merely imported into an allowed module: `from os import system`
])
def test_functions_outside_the_allowlist_are_refused(backend: Backend, tmp_path: Path, path: str) -> None:
    marker = tmp_path / "pwned"
    app = backend.app(imports=[ALLOWED], dequeue_timeout=0.05)
    app.queue(QUEUE).enqueue(PyTask(path, [f"touch {marker}"]))
    before = len(allowed_tasks.ran)
    app.worker(QUEUE).run(burst=True, install_signals=False)
    (letter,) = dead_letters(backend.client)
    assert letter["reason"] == Reason.NOT_ALLOWED
    assert letter["func"] == path
    assert not marker.exists()
    assert len(allowed_tasks.ran) == before
    assert backend.client.llen(QUEUE) == backend.client.hlen(f"{QUEUE}_processing") == 0


@pytest.mark.real_redis
def test_allow_any_import_runs_a_stdlib_function_and_warns(real_redis: RedisServer, tmp_path: Path) -> None:
    source, target = tmp_path / "a.txt", tmp_path / "b.txt"
    source.write_text("hello")
    Delayed(real_redis.url, load_entry_points=False).queue(QUEUE).enqueue(
        PyTask("shutil:copyfile", [str(source), str(target)]))
    worker = run_burst_worker(real_redis.url, tmp_path, real_redis.url, ["--allow-any-import"])
    assert target.read_text() == "hello"
    warning = [line for line in worker.log().splitlines() if "--allow-any-import is on" in line]
    assert len(warning) == 1 and "WARNING" in warning[0] and "os:system" in warning[0]
    assert real_redis.client().llen(f"{QUEUE}_dead") == 0


# -- passwords ------------------------------------------------------------------------------------
@pytest.mark.real_redis
def test_password_in_the_url(server_factory: list[RedisServer], tmp_path: Path) -> None:
    server = RedisServer(extra_args=["--requirepass", "s3cret"])
    server.password = "s3cret"
    server_factory.append(server.start())
    good = f"redis://:s3cret@{server.host}:{server.port}/0"
    bad = f"redis://:wrong@{server.host}:{server.port}/0"
    Delayed(good, load_entry_points=False).queue(QUEUE).enqueue(PyTask(f"{TASKS_MODULE}:record", [1]))
    run_burst_worker(good, tmp_path, good)
    assert server.client().smembers("ran_set") == {b"1"}

    info = subprocess.run([*CliProcess.command_prefix(), "info", "--broker", bad], capture_output=True,
                          text=True, timeout=30, env=CliProcess.environment({}))
    assert info.returncode == 1
    assert len(info.stderr.strip().splitlines()) == 1, info.stderr
    assert "cannot reach the broker" in info.stderr and "Traceback" not in info.stderr

    worker = CliProcess(worker_args(bad, QUEUE), tmp_path, {"CHAOS_REDIS_URL": good})
    poll(lambda: worker.log().count("cannot reach the broker") >= 2, 10, message="two retry lines")
    assert worker.alive()
    worker.terminate()
    assert worker.wait(10) == 0
    assert "Traceback" not in worker.log()
    # Regression: the retry line used to print the URL with its password.
    assert "wrong" not in worker.log() and ":***@" in worker.log()


# -- ACL ------------------------------------------------------------------------------------------
@pytest.mark.real_redis
def test_least_privilege_acl_user_can_enqueue_work_and_sweep(server_factory: list[RedisServer],
                                                             tmp_path: Path) -> None:
    server = RedisServer()
    server_factory.append(server.start())
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "qworker", *ACL_RULE)
    url = f"redis://qworker:workerpass@{server.host}:{server.port}/0"
    app = Delayed(url, load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask(f"{TASKS_MODULE}:record", [1]))
    tracked = app.queue(QUEUE).enqueue_many([PyTask(f"{TASKS_MODULE}:record", [3]),
                                             PyTask(f"{TASKS_MODULE}:record", [4])], track=True)
    assert tracked is not None and [h.status() for h in tracked] == ["queued", "queued"]
    # A task held by a dead worker (no liveness key): the sweeper, as the ACL user, recovers it.
    admin.hset(f"{QUEUE}_processing", "a" * 32, app.serializer.dumps(PyTask(f"{TASKS_MODULE}:record", [2])))
    info = CliProcess(["info", "--broker", url, "--queue", QUEUE], tmp_path)
    assert info.wait(20) == 0 and "DEAD: the sweeper will requeue it" in info.log(), info.log()
    sweeper = CliProcess([*sweeper_args(url, QUEUE, max_recoveries=3), "--once"], tmp_path)
    assert sweeper.wait(20) == 0 and "requeued 1" in sweeper.log(), sweeper.log()
    run_burst_worker(url, tmp_path, server.url)
    assert admin.smembers("ran_set") == {b"1", b"2", b"3", b"4"}
    # task records under the rule: the worker wrote them, the user reads them (a waiter polls: no &channels)
    assert [h.status() for h in tracked] == ["succeeded", "succeeded"] and tracked[0].result(timeout=1) is None
    # The user really is limited: other keys and admin commands are refused.
    user = app.broker(QUEUE).client  # type: ignore[attr-defined]
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.set("other_key", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.flushall()


#: what the recommended ACL adds to the minimal one (docs/reliability.md): scheduled-task announcements (pub/sub
#: on the queue's channel, and UNSUBSCRIBE to leave a channel) and prompt stops (CLIENT UNBLOCK of idle slots)
ACL_EXTRAS = ["+publish", "+subscribe", "+unsubscribe", f"&{QUEUE}_scheduled", "+client|id", "+client|unblock"]


@pytest.mark.real_redis
@pytest.mark.parametrize("rule", ["minimal", "recommended"])
def test_scheduled_tasks_and_stops_work_under_both_acls(rule: str, server_factory: list[RedisServer],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Without pub/sub and CLIENT rights a worker falls back to polling (one warning) and to stopping at
    its next BLPOP timeout; with them it is woken at once (CLIENT UNBLOCK). Nothing fails either way."""
    import threading
    import time

    server = RedisServer()
    server_factory.append(server.start())
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "qworker", *ACL_RULE, *(ACL_EXTRAS if rule == "recommended" else []))
    url = f"redis://qworker:workerpass@{server.host}:{server.port}/0"
    # With CLIENT UNBLOCK a stop cannot wait for a 60 s BLPOP; without, a short one keeps the test short.
    dequeue_timeout = 60 if rule == "recommended" else 1
    app = Delayed(url, imports=[ALLOWED], load_entry_points=False, dequeue_timeout=dequeue_timeout)
    worker = app.worker(QUEUE, slots=2)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    app.queue(QUEUE).enqueue(PyTask(f"{ALLOWED}:add", [2, 3]), delay=0.3)
    poll(lambda: admin.zcard(f"{QUEUE}_scheduled") == 0 and not admin.llen(QUEUE)
         and not admin.hlen(f"{QUEUE}_processing"), 20, message="the scheduled task ran")
    assert admin.llen(f"{QUEUE}_dead") == 0
    poll(lambda: admin.info("clients")["blocked_clients"] == 2, 20, message="both slots blocked again")
    started = time.monotonic()
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()
    unblocks = admin.info("commandstats").get("cmdstat_client|unblock", {}).get("calls", 0)
    fell_back = "polling for scheduled tasks" in caplog.text
    if rule == "recommended":
        # Both slots woken by the stop, not by their BLPOP's end (generous: it is 60 s away).
        assert not fell_back and unblocks >= 2 and time.monotonic() - started < 30
    else:
        assert fell_back and unblocks == 0


# -- TLS ------------------------------------------------------------------------------------------
def make_certificates(directory: Path) -> dict[str, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    files = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "server", "server-key")}
    ext = directory / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pydelayed test CA",
        "-keyout", str(files["ca-key"]), "-out", str(files["ca"]))
    csr = directory / "server.csr"
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(files["server-key"]),
        "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey", str(files["ca-key"]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(files["server"]))
    return files


@pytest.mark.real_redis
def test_enqueue_and_work_over_tls(server_factory: list[RedisServer], tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    tls_port = free_port()
    server = RedisServer(extra_args=[
        "--tls-port", str(tls_port), "--tls-cert-file", str(certs["server"]),
        "--tls-key-file", str(certs["server-key"]), "--tls-ca-cert-file", str(certs["ca"]),
        "--tls-auth-clients", "no",
    ])
    try:
        server_factory.append(server.start())
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server build has no TLS support: {exc}")
        raise
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca']}"
    Delayed(url, load_entry_points=False).queue(QUEUE).enqueue(PyTask(f"{TASKS_MODULE}:record", [1]))
    run_burst_worker(url, tmp_path, server.url)
    assert server.client().smembers("ran_set") == {b"1"}
    # Certificate checks are on: without the CA, the connection is refused, in one line.
    info = subprocess.run([*CliProcess.command_prefix(), "info", "--broker", f"rediss://127.0.0.1:{tls_port}/0"],
                          capture_output=True, text=True, timeout=30, env=CliProcess.environment({}))
    assert info.returncode == 1 and len(info.stderr.strip().splitlines()) == 1, info.stderr
    # ...and ssl_cert_reqs=none is passed through for self-managed setups.
    insecure = CliProcess(["info", "--broker", f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=none",
                           "--queue", QUEUE], tmp_path)
    assert insecure.wait(20) == 0, insecure.log()
