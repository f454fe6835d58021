"""``--log-format json``: one JSON object per stderr line, with the task's context on task lines."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.cli.common import RedactingJsonFormatter
from delayed_core.config import load_config
from delayed_core.errors import ConfigError
from delayed_core.logcontext import TaskScope, current_fields, note_outcome, note_task
from delayed_core.outcome import Outcome, Status
from tests.support import cli
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def delayed(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    """``delayed ARGS`` as a user runs it, with this repository importable (for the test's task module)."""
    return cli.delayed(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT), **(env or {})})


def parsed_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as JSON (fails on the first line that is not)."""
    lines = stderr.splitlines()
    assert lines, "the worker logged nothing"
    result = []
    for line in lines:
        try:
            result.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    return result


def test_a_worker_run_logs_json_lines_with_the_task_context(real_redis: RedisServer, tmp_path: Path) -> None:
    app = Delayed(real_redis.url, load_entry_points=False)
    queue = app.queue("jsonq")
    queue.enqueue(PyTask("tests.otel_tasks:ok", [1]))
    queue.enqueue(PyTask("tests.otel_tasks:boom", ["bad\nthing"]))
    result = delayed("worker", "--broker", real_redis.url, "--queue", "jsonq", "--import", "tests.otel_tasks",
                     "--burst", "--log-format", "json", "--log-level", "DEBUG", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = parsed_lines(result.stderr)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert line["time"].endswith("+00:00")
    succeeded = [line for line in lines if "tests.otel_tasks:ok succeeded" in line["message"]]
    failed = [line for line in lines if "tests.otel_tasks:boom failed" in line["message"]]
    dead = [line for line in lines if line["message"].startswith("dead-lettered")]
    assert len(succeeded) == len(failed) == len(dead) == 1, lines
    for line, outcome in ((succeeded[0], "succeeded"), (failed[0], "failed"), (dead[0], "failed")):
        assert line["queue"] == "jsonq" and len(line["worker_id"]) == 32
        assert line["attempt"] == 1 and line["outcome"] == outcome
        assert isinstance(line["duration"], float) and line["duration"] >= 0
    assert succeeded[0]["function"] == "tests.otel_tasks:ok" and failed[0]["function"] == "tests.otel_tasks:boom"
    assert failed[0]["level"] == "WARNING" and dead[0]["level"] == "ERROR"
    # Lines outside a task carry no task fields.
    started = [line for line in lines if line["message"].startswith("worker serving")]
    assert started and "queue" not in started[0] and "function" not in started[0]


def test_log_format_is_a_setting_too(real_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text('log_format = "json"\n')
    result = delayed("worker", "--broker", real_redis.url, "--queue", "empty", "--burst", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert parsed_lines(result.stderr)[0]["logger"].startswith("delayed")
    text = delayed("worker", "--broker", real_redis.url, "--queue", "empty", "--burst", cwd=tmp_path,
                   env={"DELAYED_LOG_FORMAT": "text"})
    assert text.stderr and not text.stderr.startswith("{")


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log_format must be text or json"):
        load_config({"log_format": "xml"})
    result = delayed("info", "--log-format", "xml", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


def record(message: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("delayed.worker", logging.ERROR, __file__, 1, message, args, exc_info)


def test_formatter_fields_exception_and_password() -> None:
    formatter = RedactingJsonFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        line = formatter.format(record("cannot reach %s", "redis://:s3cret@host:6379/0", exc_info=sys.exc_info()))
    assert "\n" not in line and "s3cret" not in line
    data = json.loads(line)
    assert data["message"] == "cannot reach redis://:***@host:6379/0"
    assert data["exception"].startswith("Traceback") and "RuntimeError: boom" in data["exception"]
    assert data["level"] == "ERROR" and data["logger"] == "delayed.worker"


def test_task_scope_sets_and_resets_the_context() -> None:
    assert current_fields() == {}
    with TaskScope("q", "ab" * 16):
        assert current_fields() == {"queue": "q", "worker_id": "ab" * 16}
        note_task(PyTask("m:f", meta={"attempt": 2}))
        note_outcome(Outcome(Status.TIMEOUT, 1.5))
        assert current_fields() == {"queue": "q", "worker_id": "ab" * 16, "function": "m:f", "attempt": 3,
                                    "duration": 1.5, "outcome": "timeout"}
        assert json.loads(RedactingJsonFormatter().format(record("x")))["function"] == "m:f"
    assert current_fields() == {}
    note_task(PyTask("m:f"))  # outside a scope: ignored
    assert current_fields() == {}


@pytest.mark.parametrize("command", [["worker"], ["sweeper"], ["info"], ["dead", "list"], ["doctor"]])
def test_every_command_that_logs_takes_the_flag(command: list[str]) -> None:
    from delayed_core.cli.main import build_parser

    args = build_parser().parse_args([*command, "--log-format", "json"])
    assert args.log_format == "json"
