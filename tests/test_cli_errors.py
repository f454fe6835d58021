"""Every mistake a user can make on the command line ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.chaos.processes import CliProcess
from tests.support.redis_server import free_port


def delayed(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``delayed ARGS`` in ``cwd`` with a clean environment."""
    return subprocess.run([*CliProcess.command_prefix(), *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=CliProcess.environment({}), stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a non-zero exit with exactly one stderr line and no traceback; return the line."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def nowhere() -> str:
    """A Redis URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize("args, expected", [
    (["worker", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["worker", "--slots", "0"], "must be > 0"),
    (["worker", "--slots", "many"], "expected an integer"),
    (["worker", "--keep-alive-timeout", "-1"], "must be > 0"),
    (["worker", "--timeout", "soon"], "expected a number"),
    (["sweeper", "--interval", "0"], "must be > 0"),
    (["nosuchcommand"], "invalid choice"),
    ([], "required"),
])
def test_bad_flags_and_values(tmp_path: Path, args: list[str], expected: str) -> None:
    line = one_line_error(delayed(*args, cwd=tmp_path))
    assert expected in line
    assert "--help" in line


def test_unknown_executor_lists_valid_names(tmp_path: Path, nowhere: str) -> None:
    result = delayed("worker", "--broker", nowhere, "--executor", "thraed", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2
    assert "thraed" in line and "thread" in line
    assert "did you mean" in line.lower()


def test_unknown_setting_in_delayed_toml(tmp_path: Path, nowhere: str) -> None:
    (tmp_path / "delayed.toml").write_text("slotz = 4\n")
    result = delayed("info", "--broker", nowhere, cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2
    assert "slotz" in line and "slots" in line


def test_bad_value_in_delayed_toml(tmp_path: Path, nowhere: str) -> None:
    (tmp_path / "delayed.toml").write_text('slots = "four"\n')
    line = one_line_error(delayed("worker", "--broker", nowhere, cwd=tmp_path))
    assert "slots" in line


@pytest.mark.parametrize("command", [["info"], ["sweeper", "--once"], ["info", "--queue", "q", "--json"]])
def test_unreachable_redis(tmp_path: Path, nowhere: str, command: list[str]) -> None:
    result = delayed(*command, "--broker", nowhere, cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 1
    assert "cannot reach the broker" in line


def test_bad_broker_url(tmp_path: Path) -> None:
    line = one_line_error(delayed("info", "--broker", "http://example.com", cwd=tmp_path))
    assert "redis://" in line


def test_demo_runs_without_redis(tmp_path: Path) -> None:
    result = delayed("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "summary" in result.stdout
