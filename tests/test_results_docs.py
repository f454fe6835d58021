"""docs/results.md's web example, run as written: tasks.py and web.py in a fresh folder, ``delayed worker``
and ``python web.py`` as subprocesses on a real redis-server, and HTTP requests to the endpoints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from delayed_core.testing.processes import Process, wait_until
from tests.support import cli
from tests.support.redis_server import RedisServer, free_port

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def example_files() -> tuple[str, str]:
    """The ``tasks.py`` and ``web.py`` blocks of the example section."""
    section = DOC.read_text().split("## Example: a web endpoint pair", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    return blocks[0], blocks[1]


def request(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    data = b"" if method == "POST" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_web_example(real_redis: RedisServer, tmp_path: Path) -> None:
    tasks, web = example_files()
    (tmp_path / "tasks.py").write_text(tasks)
    (tmp_path / "web.py").write_text(web)
    port = free_port()
    env = {"DELAYED_BROKER_URL": real_redis.url}
    with (tmp_path / "web.log").open("wb") as log:  # python web.py, as the doc says
        server = subprocess.Popen([sys.executable, "web.py"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                  env=cli.user_environment({**env, "PORT": str(port)}))
    try:
        assert wait_until(lambda: _listening(port), 15)
        status, body = request(port, "POST", "/exports/42")
        assert status == 202
        task_id = body["id"]
        assert request(port, "GET", f"/tasks/{task_id}") == (200, {"id": task_id, "status": "queued"})
        worker = Process("worker", ["worker", "--import", "tasks", "--dequeue-timeout", "0.2"], tmp_path, env)
        try:
            assert wait_until(lambda: request(port, "GET", f"/tasks/{task_id}")[1]["status"] == "succeeded", 20), \
                worker.log()
        finally:
            assert worker.stop() == 0
        assert request(port, "GET", f"/tasks/{task_id}") == (200, {
            "id": task_id, "status": "succeeded", "result": {"order": 42, "url": "/files/export-42.csv"}})
        assert request(port, "GET", "/tasks/nope") == (404, {"id": "nope", "status": "unknown"})
    finally:
        server.terminate()
        server.wait(10)


def _listening(port: int) -> bool:
    try:
        request(port, "GET", "/nothing")
        return True
    except OSError:
        return False
