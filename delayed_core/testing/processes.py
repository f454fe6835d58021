"""``delayed`` command-line processes for the crash-point harness, each logging to its own file.

A log file, never a pipe: a pipe nobody drains would block a chatty worker, and a file can still be read
after a SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def delayed_command() -> list[str]:
    """The ``delayed`` console script beside this interpreter, else ``python -m delayed_core.cli.main``."""
    script = Path(sys.executable).with_name("delayed")
    return [str(script)] if script.exists() else [sys.executable, "-m", "delayed_core.cli.main"]


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its DELAYED_* variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DELAYED_")}
    env.update(extra)
    return env


class Process:
    """One ``delayed <args>`` process, started in ``cwd`` with its output in ``cwd/<name>.log``."""

    def __init__(self, name: str, args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen([*delayed_command(), *args], stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=cwd, env=clean_environment(env or {}))

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Send ``signum`` if it still runs."""
        if self.alive():
            self.popen.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; return the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(timeout)


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition()`` until it is true (return True) or ``timeout`` seconds pass (return False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
