"""Run the installed ``delayed`` console script and ``python`` the way a user does: from a folder, with
no PYTHONPATH, and no DELAYED_* variable except those a test sets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the console script installed next to this interpreter (``.venv/bin/delayed``)
DELAYED = str(Path(sys.executable).with_name("delayed"))


def user_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without PYTHONPATH and DELAYED_* settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DELAYED_") and key != "PYTHONPATH"}
    env.update(extra or {})
    return env


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` as a user would and return what it printed."""
    return subprocess.run(command, cwd=cwd, env=user_environment(env), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def delayed(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``delayed ARGS`` through the installed console script."""
    return run([DELAYED, *args], cwd, env, timeout)


def python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with the test interpreter."""
    return run([sys.executable, *args], cwd, env)
