"""Running the venv's ``delayed`` command as a user does, from a folder of the test's choosing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the console script installed next to this interpreter
DELAYED = str(Path(sys.executable).parent / "delayed")


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without DELAYED_* settings, with the repository importable, plus ``extra``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DELAYED_")}
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(extra or {})
    return environment


def run_delayed(*args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``delayed ARGS`` to completion; stdout and stderr captured as text."""
    return subprocess.run([DELAYED, *args], cwd=cwd, env=cli_environment(env), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
