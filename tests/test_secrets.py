"""No password is ever printed: every command, every form of URL, given as a flag or in the environment."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
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
@pytest.fixture
def secured() -> Iterator[RedisServer]:
    """A redis-server that requires PASSWORD, with one dead letter whose error holds the URL."""
    require_redis_server()
    server = RedisServer(extra_args=["--requirepass", PASSWORD])
    server.password = PASSWORD
    server.start()
    yield server
    server.cleanup()


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


#: (arguments, exit status with a good URL); broker-less commands (config, demo) exit 0 for any URL
COMMANDS: list[tuple[list[str], bool]] = [
    (["info"], True), (["info", "--json"], True), (["sweeper", "--once"], True), (["dead", "list"], True),
    (["dead", "list", "--json"], True), (["dead", "show", "0"], True), (["config"], False),
    (["config", "--json"], False), (["demo"], False),
]


#: run with the URL in the environment: every broker command reads it through the same Config as a flag, so
#: one of them (info) proves the environment path; config and demo read the URL from the environment only
ENV_COMMANDS = [["info"], ["config"], ["config", "--json"], ["demo"]]


def assert_no_secret(result: subprocess.CompletedProcess[str], what: str) -> None:
    output = result.stdout + result.stderr
    assert PASSWORD not in output and WRONG not in output, f"{what} printed a password:\n{output}"
    assert "Traceback" not in result.stderr, f"{what}:\n{result.stderr}"


@pytest.mark.real_redis
@pytest.mark.parametrize("kind", ["userinfo", "user-and-password", "query", "invalid-port", "wrong-password",
                                  "wrong-password-query"])
@pytest.mark.parametrize("given_as", ["flag", "env"])
def test_no_command_prints_the_password(secured: RedisServer, tmp_path: Path, kind: str, given_as: str) -> None:
    good = urls(secured)["userinfo"]
    url = urls(secured)[kind]
    (tmp_path / "leaky.py").write_text(LEAKY_MODULE)
    app = Delayed(good, load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask("leaky:connect", [good]))
    app.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        if given_as == "flag":
            return cli.delayed(*args, "--broker", url, cwd=tmp_path)
        return cli.delayed(*args, cwd=tmp_path, env={"DELAYED_BROKER_URL": url})

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
            continue  # config and demo read the URL from the environment only: the "env" run covers them
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
