"""docs/periodic.md's examples run for real: files written to a fresh folder, the installed ``delayed``
command started there, against the test's redis-server."""

from __future__ import annotations

import contextlib
import io
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from tests.chaos.processes import poll
from tests.conftest import Backend
from tests.support import cli
from tests.test_docs_examples import README_URL, bash_blocks, python_blocks, shell_lines

DOC = Path(__file__).resolve().parents[1] / "docs" / "periodic.md"


def test_periodic_doc_examples_run(real_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text()
    tasks, bounded = python_blocks(text)[:2]
    (tmp_path / "tasks.py").write_text(tasks.replace(README_URL, real_backend.url))
    worker_command, list_command = shell_lines(bash_blocks(text)[0])
    assert worker_command == "delayed worker --import tasks" and list_command == "delayed periodic list"
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([cli.DELAYED, *worker_command.split()[1:], "--broker", real_backend.url],
                              cwd=tmp_path, env=cli.user_environment(), stdout=log.open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        def listing() -> str:
            result = cli.delayed(*list_command.split()[1:], "--broker", real_backend.url, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            return result.stdout

        poll(lambda: "outcome:   succeeded" in listing(), 20, interval=0.5, message="a heartbeat run")
        out = listing()
        assert "tasks:heartbeat: every 2s -> queue default (missed ticks: latest)" in out
        assert "tasks:nightly_report: cron 30 2 * * * Europe/Berlin -> queue default" in out

        # the rate limit: 6 calls at 5/s start over at least one second
        app = Delayed(real_backend.url, load_entry_points=False)
        started = time.monotonic()
        for n in range(6):
            app.queue().enqueue(PyTask("tasks:call_partner_api", (n,), {}))
        poll(lambda: log.read_text().count("calling") == 6, 20, message="six calls")
        assert time.monotonic() - started >= 0.95

        # the bounded queue: the batch that does not fit is refused whole
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(bounded, "periodic.md bounded", "exec"), {"app": app})
        assert "a batch of 20000 tasks cannot fit under max_length=10000" in printed.getvalue()
        assert real_backend.client.llen("emails") == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, log.read_text()[-2000:]

    # the per-queue setting, as the TOML block writes it
    toml = re.search(r"```toml\n(.*?)```", text, re.S)
    assert toml is not None
    (tmp_path / "delayed.toml").write_text(toml.group(1))
    monkeypatch.chdir(tmp_path)
    assert Delayed("memory://doc-toml", load_entry_points=False).queue("emails").max_length == 10000
