"""``delayed dashboard`` as a user starts it (subprocess, fresh folder, real redis-server), and the worker
details it shows (written once per worker start)."""

from __future__ import annotations

import itertools
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core import DeadLetter, PyTask, hookimpl
from tests.conftest import Backend
from tests.support.cli import DELAYED, delayed, python
from tests.support.redis_server import RedisServer, free_port
from tests.test_dashboard_browser import started, stop

_logs = itertools.count()


class Dashboard:
    """A ``delayed dashboard`` subprocess and what it printed before serving."""

    def __init__(self, folder: Path, *args: str) -> None:
        log = folder / f"dashboard-{next(_logs)}.log"
        self.process, self.stderr = started([DELAYED, "dashboard", "--port", "0", *args], folder, log, "serving")
        self.url = self.stderr[-1].split(" at ")[1].split()[0].rstrip("/")

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, fields: dict[str, str], token: str | None = None) -> int:
        """POST a form without following the redirect; return the status."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, data=urllib.parse.urlencode(fields).encode(),
                                         headers=headers, method="POST")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        try:
            with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


@pytest.fixture
def dashboards(tmp_path: Path) -> Iterator[list[Dashboard]]:
    running: list[Dashboard] = []
    yield running
    for dashboard in running:
        stop(dashboard.process)


def one_dead_letter(backend: Backend, queue: str = "jobs") -> None:
    app = backend.app()
    task = app.serializer.dumps(PyTask("pkg:f", [1]))
    app.broker(queue).dead_letter(None, DeadLetter(task=task, reason="failed", queue=queue).to_json())


def test_without_the_extra_the_command_says_what_to_install(real_redis: RedisServer, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None\n"
            "from delayed_core.cli.main import main\n"
            f"sys.exit(main(['dashboard', '--broker', {real_redis.url!r}]))\n")
    result = python("-c", code, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("delayed dashboard: error: the dashboard needs the 'starlette' package: "
                             "pip install 'pydelayed[dashboard]'\n")


def test_the_cli_does_not_import_the_web_stack(tmp_path: Path) -> None:
    code = ("import sys\nfrom delayed_core.cli.main import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'jinja2', "
            "'delayed_dashboard')))")
    assert python("-c", code, cwd=tmp_path).stdout.strip() == "[]"


def test_a_generated_token_is_printed_once_and_enables_actions(
        real_backend: Backend, tmp_path: Path, dashboards: list[Dashboard]) -> None:
    one_dead_letter(real_backend)
    dashboard = Dashboard(tmp_path, "--broker", real_backend.url)
    dashboards.append(dashboard)
    (line,) = [text for text in dashboard.stderr if "action token" in text]
    token = line.rsplit(" ", 1)[1].strip()
    assert len(token) >= 32
    purge = {"queue": "jobs", "confirm": "yes"}
    assert dashboard.post("/actions/purge-all", purge) == 403
    assert dashboard.post("/actions/purge-all", purge, token="not-" + token) == 403
    assert real_backend.client.llen("jobs_dead") == 1
    assert dashboard.post("/actions/purge-all", purge, token=token) == 303
    assert real_backend.client.llen("jobs_dead") == 0


def test_the_token_may_come_from_a_file(real_backend: Backend, tmp_path: Path, dashboards: list[Dashboard]) -> None:
    one_dead_letter(real_backend)
    (tmp_path / "token").write_text("from-a-file\n")
    dashboard = Dashboard(tmp_path, "--broker", real_backend.url, "--token-file", "token")
    dashboards.append(dashboard)
    assert not any("action token" in line for line in dashboard.stderr)
    assert dashboard.post("/actions/purge-all", {"queue": "jobs", "confirm": "yes"}, token="from-a-file") == 303
    missing = delayed("dashboard", "--broker", real_backend.url, "--token-file", "nope", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == "delayed dashboard: error: cannot read the token file 'nope': No such file or directory\n"


def test_read_only_offers_and_accepts_no_action(
        real_backend: Backend, tmp_path: Path, dashboards: list[Dashboard]) -> None:
    one_dead_letter(real_backend)
    dashboard = Dashboard(tmp_path, "--broker", real_backend.url, "--read-only", "--token", "t")
    dashboards.append(dashboard)
    assert "(read-only)" in dashboard.stderr[-1]
    page = dashboard.get("/dead?queue=jobs")
    assert "pkg:f" in page and 'method="post"' not in page and "Sign in" not in page
    for action in ("requeue", "purge", "purge-all"):
        assert dashboard.post(f"/actions/{action}", {"queue": "jobs", "confirm": "yes"}, token="t") == 403
    assert dashboard.post("/login", {"token": "t"}) == 403
    assert real_backend.client.llen("jobs_dead") == 1


def test_the_password_is_never_shown(tmp_path: Path, dashboards: list[Dashboard]) -> None:
    server = RedisServer(["--requirepass", "pa55-word-x"]).start()
    try:
        url = f"redis://:pa55-word-x@127.0.0.1:{server.port}/0"
        dashboard = Dashboard(tmp_path, "--broker", url, "--token", "t")
        dashboards.append(dashboard)
        pages = [dashboard.get(path) for path in ("/", "/workers", "/scheduled", "/dead")]
        for text in [*dashboard.stderr, *pages]:
            assert "pa55-word-x" not in text
        assert f"redis://:***@127.0.0.1:{server.port}/0" in pages[0]
    finally:
        for dashboard in dashboards:
            stop(dashboard.process)
        dashboards.clear()
        server.cleanup()


def test_one_line_errors_at_start(real_redis: RedisServer, tmp_path: Path) -> None:
    unreachable = delayed("dashboard", "--broker", f"redis://127.0.0.1:{free_port()}/0", cwd=tmp_path)
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("delayed dashboard: cannot reach the broker: ")
    assert unreachable.stderr.count("\n") == 1
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = delayed("dashboard", "--broker", real_redis.url, "--port", str(port), "--token", "t", cwd=tmp_path)
    assert busy.returncode == 1
    assert busy.stderr == f"delayed dashboard: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    too_high = delayed("dashboard", "--broker", real_redis.url, "--port", "70000", "--token", "t", cwd=tmp_path)
    assert (too_high.returncode, too_high.stderr) == (
        1, "delayed dashboard: error: cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535.\n")


# -- worker details ------------------------------------------------------------------------------------
def test_a_starting_worker_announces_itself_and_stale_entries_go(backend: Backend) -> None:
    app = backend.app(slots=2, dequeue_timeout=0.1)
    broker = app.broker("jobs")
    crashed = "f" * 32  # details of a worker that died without going offline (not in the registry)
    broker.announce_workers([crashed], {"host": "gone"})
    assert set(broker.worker_details()) == {crashed}
    seen: dict[str, dict[str, object]] = {}

    class Spy:
        @hookimpl(trylast=True)  # after the built-in plugin announced the worker
        def delayed_worker_started(self, worker: object) -> None:
            seen.update(broker.worker_details())

    app.register_plugin(Spy())
    worker = app.worker("jobs")
    worker.run(burst=True, install_signals=False)
    assert set(seen) == set(worker.worker_ids)
    assert seen[worker.worker_ids[0]] | {"started": 0} == {
        "host": os.uname().nodename, "pid": os.getpid(), "queues": ["jobs"], "executor": "thread", "slots": 2,
        "started": 0}
    assert broker.worker_details() == {}  # a clean stop takes the details away with the ids
    assert backend.client.exists("jobs_worker_info") == 0


def test_worker_details_are_one_round_trip_at_start_only(real_backend: Backend) -> None:
    monitor = real_backend.client
    before = monitor.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    app = real_backend.app(dequeue_timeout=0.1)
    app.broker("jobs").announce_workers(["a" * 32], {"host": "h"})
    after = monitor.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert after - before <= 2  # one EVALSHA (a second one only after NOSCRIPT: SCRIPT LOAD + retry)
    assert monitor.hget("jobs_worker_info", "a" * 32) == b'{"host":"h"}'
