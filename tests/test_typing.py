"""Type checkers see a task's parameters through ``.delay()``: mypy runs on a small sample."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("delayed_core", "delayed_redis", "delayed_plugins")

SAMPLE = '''
import datetime

from delayed_core import Delayed

app = Delayed("redis://localhost:6379/0")


@app.task
def double(n: int) -> int:
    return n * 2


@app.task(retry=3, queue="mail")
def greet(name: str, punctuation: str = "!") -> str:
    return name + punctuation


result: int = double(3)
double.delay(2)
double.delay_in(5, n=2)
double.delay_at(datetime.datetime.now(), 2)
greet.delay("Ann", punctuation="?")
greet.task("Ann")
double.delay("x")  # error: @app.task
greet.delay_in(5, 1)  # error: @app.task(...)


async def handler() -> None:
    handle = await double.delay_async(2)
    await greet.delay_at_async(datetime.datetime.now(), "Ann", punctuation="?")
    await double.delay_in_async(5, "x")  # error: the asyncio variants keep the parameters too
    print(handle)
'''


def test_mypy_rejects_wrong_arguments_to_delay_and_nothing_else(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "sample.py").write_text(textwrap.dedent(SAMPLE))
    # MYPYPATH: an editable install is an import hook, which mypy cannot follow.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary", "--hide-error-context",
         "--no-color-output", "--cache-dir", str(tmp_path / "cache"), "sample.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"MYPYPATH": str(ROOT), "PATH": ""},
    )
    errors = [line for line in result.stdout.splitlines() if re.match(r"sample\.py:\d+: error", line)]
    lines = textwrap.dedent(SAMPLE).splitlines()
    first, second, third = (lines.index(line) + 1 for line in lines if "# error" in line)
    assert errors == [
        f'sample.py:{first}: error: Argument 1 to "delay" of "TaskFunction" has incompatible type "str"; '
        'expected "int"  [arg-type]',
        f'sample.py:{second}: error: Argument 2 to "delay_in" of "TaskFunction" has incompatible type "int"; '
        'expected "str"  [arg-type]',
        f'sample.py:{third}: error: Argument 2 to "delay_in_async" of "TaskFunction" has incompatible type "str"; '
        'expected "int"  [arg-type]',
    ], result.stdout + result.stderr


def test_packages_ship_py_typed() -> None:
    """PEP 561: each package has a py.typed marker, and the build includes it as package data."""
    import tomllib

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]
