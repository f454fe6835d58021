"""No password is ever printed: every command, every form of URL, given as a flag or in the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.cli.main import main
from delayed_core.config import load_config
from delayed_core.redact import redact, redact_url
from tests.chaos.processes import poll
from tests.support import cli
from tests.support.redis_server import RedisServer, require_redis_server

PASSWORD = "Pw0rd-s3cret"
WRONG = "Wr0ng-s3cret"
QUEUE = "default"
#: a task module that fails with the broker URL in its error, as a careless task would
LEAKY_MODULE = '''
def connect(url):
    raise ConnectionError(f"cannot connect to {url}")
'''


# -- the routine ----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, shown", [
    ("redis://:s3cret@localhost:6379/0", "redis://:***@localhost:6379/0"),
    ("redis://alice:s3cret@localhost:6379/0", "redis://alice:***@localhost:6379/0"),
    ("redis://:s3cret@localhost:notaport/0", "redis://:***@localhost:notaport/0"),
    ("redis://:p@ss/w?rd@host/0", "redis://:***@host/0"),
    ("rediss://localhost/0?password=s3cret&ssl_cert_reqs=none", "rediss://localhost/0?password=***&ssl_cert_reqs=none"),
    ("redis://localhost/0?db=1&PASSWORD=s3cret", "redis://localhost/0?db=1&PASSWORD=***"),
    ("unix://:s3cret@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
    ("user:s3cret@localhost:6379", "user:***@localhost:6379"),
    ("redis://alice@localhost:6379/0", "redis://alice@localhost:6379/0"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("memory://demo", "memory://demo"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact(f"error: invalid URL {url!r}: bad port")


def test_redact_leaves_plain_text_alone_and_hides_urls_in_it() -> None:
    assert redact("slot 1: task done in 3 ms") == "slot 1: task done in 3 ms"
    text = "cannot reach redis://u:s3cret@h:1/0 or 'rediss://h/0?password=s3cret', nor password=s3cret"
    assert redact(text) == "cannot reach redis://u:***@h:1/0 or 'rediss://h/0?password=***', nor password=s3cret"


def test_config_and_app_repr_hide_both_forms() -> None:
    config = load_config({"broker_url": "redis://u:s3cret@h:6379/0?password=s3cret2"}, env={})
    assert config.redacted_broker_url == "redis://u:***@h:6379/0?password=***"
    assert "s3cret" not in repr(Delayed("redis://:s3cret@h:6379/0", load_entry_points=False))


# -- every command, every form ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured_server() -> Iterator[RedisServer]:
    """A redis-server that requires PASSWORD, shared by the module (each test flushes it)."""
    require_redis_server()
    server = RedisServer(extra_args=["--requirepass", PASSWORD])
    server.password = PASSWORD
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def secured(secured_server: RedisServer) -> RedisServer:
    """The password-protected server, emptied."""
    secured_server.client().flushall()
    return secured_server


def urls(server: RedisServer) -> dict[str, str]:
    """The broker URLs to try, by kind: each carries PASSWORD or WRONG."""
    where = f"{server.host}:{server.port}"
    return {
        "userinfo": f"redis://:{PASSWORD}@{where}/0",
        "user-and-password": f"redis://default:{PASSWORD}@{where}/0",
        "query": f"redis://{where}/0?password={PASSWORD}",
        "invalid-port": f"redis://:{PASSWORD}@{server.host}:notaport/0",
        "wrong-password": f"redis://:{WRONG}@{where}/0",
        "wrong-password-query": f"redis://{where}/0?password={WRONG}",
    }


#: (arguments, exit status with a good URL); broker-less commands (config) exit 0 for any URL
COMMANDS: list[tuple[list[str], bool]] = [
    (["info"], True), (["info", "--json"], True), (["sweeper", "--once"], True), (["dead", "list"], True),
    (["dead", "list", "--json"], True), (["dead", "show", "0"], True), (["config"], False),
    (["config", "--json"], False),
]


#: run with the URL in the environment: every broker command reads it through the same Config as a flag, so
#: one of them (info) proves the environment path; config reads the URL from the environment only
ENV_COMMANDS = [["info"], ["config"], ["config", "--json"]]

#: Commands run as a process of their own, each for its own way of printing: the worker and the sweeper
#: log through their logging set-up, and ``info`` ends on the CLI's one-line error printer when the URL is
#: refused. The others print through the same ``main`` as ``info`` does, so they run in this process
#: (``main(argv)``, output captured), which proves the same for a fraction of a process start each.
SUBPROCESS_COMMANDS = (["info"], ["sweeper", "--once"])


def assert_no_secret(result: subprocess.CompletedProcess[str], what: str) -> None:
    output = result.stdout + result.stderr
    assert PASSWORD not in output and WRONG not in output, f"{what} printed a password:\n{output}"
    assert "Traceback" not in result.stderr, f"{what}:\n{result.stderr}"


def in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``delayed ARGS`` through :func:`delayed_core.cli.main.main` in this process, as a finished process."""
    capsys.readouterr()  # drop what came before
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


@pytest.mark.real_redis
@pytest.mark.parametrize("kind", ["userinfo", "user-and-password", "query", "invalid-port", "wrong-password",
                                  "wrong-password-query"])
@pytest.mark.parametrize("given_as", ["flag", "env"])
def test_no_command_prints_the_password(secured: RedisServer, tmp_path: Path, kind: str, given_as: str,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    good = urls(secured)["userinfo"]
    url = urls(secured)[kind]
    (tmp_path / "leaky.py").write_text(LEAKY_MODULE)
    app = Delayed(good, load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask("leaky:connect", [good]))
    app.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the working directory on it
    if given_as == "env":
        monkeypatch.setenv("DELAYED_BROKER_URL", url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        flag = ["--broker", url] if given_as == "flag" else []
        if list(args) in SUBPROCESS_COMMANDS or args[0] == "worker":
            env = {"DELAYED_BROKER_URL": url} if given_as == "env" else {}
            return cli.delayed(*args, *flag, cwd=tmp_path, env=env)
        return in_process([*args, *flag], capsys)

    reachable = kind in ("userinfo", "user-and-password", "query")
    # The worker first: it runs the leaky task, so that `dead` has an entry with the URL in its error.
    if kind.startswith("wrong-password"):
        log = tmp_path / "worker.log"
        env = {"DELAYED_BROKER_URL": url} if given_as == "env" else {}
        flag = ["--broker", url] if given_as == "flag" else []
        with log.open("w") as out:
            worker = subprocess.Popen([cli.DELAYED, "worker", *flag, "--import", "leaky", "--burst"], cwd=tmp_path,
                                      stdout=out, stderr=subprocess.STDOUT, env=cli.user_environment(env))
        poll(lambda: log.read_text().count("cannot reach the broker") >= 1, 15, message="a retry line")
        worker.terminate()
        assert worker.wait(15) == 0
        output = log.read_text()
        assert PASSWORD not in output and WRONG not in output, output
        assert ":***@" in output or "password=***" in output
    else:
        worker = run("worker", "--import", "leaky", "--burst")
        assert_no_secret(worker, "worker")
        assert worker.returncode == (0 if reachable else 2), worker.stderr
    if reachable:
        assert "leaky:connect failed" in worker.stderr and "cannot connect to redis://:***@" in worker.stderr
        assert secured.client().llen(f"{QUEUE}_dead") == 1

    for args, uses_broker in COMMANDS:
        if given_as == "flag" and not uses_broker:
            continue  # config reads the URL from the environment only: the "env" run covers it
        if given_as == "env" and args not in ENV_COMMANDS:
            continue  # the "flag" run covers the other broker commands with the same URL
        result = run(*args)
        assert_no_secret(result, " ".join(args))
        if reachable or not uses_broker:
            assert result.returncode == 0, (args, result.stderr)
        else:
            assert result.returncode == (2 if kind == "invalid-port" else 1), (args, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        if args == ["config", "--json"]:
            assert "***" in json.loads(result.stdout)["broker_url"]["value"]
        if args == ["dead", "list"] and reachable:
            assert "cannot connect to redis://:***@" in result.stdout


@pytest.mark.parametrize("kind", ["userinfo", "query"])
def test_the_demo_never_prints_the_url_in_the_environment(tmp_path: Path, kind: str) -> None:
    """``delayed demo`` runs on its own in-process broker and reads no broker URL: one run per password
    form shows that a URL in the environment still never reaches its output."""
    url = {"userinfo": f"redis://:{PASSWORD}@127.0.0.1:1/0", "query": f"redis://127.0.0.1:1/0?password={PASSWORD}"}
    result = cli.delayed("demo", cwd=tmp_path, env={"DELAYED_BROKER_URL": url[kind]})
    assert_no_secret(result, "demo")
    assert result.returncode == 0, result.stderr
