"""Start ``delayed`` CLI processes (workers, sweepers) for the reliability tests and read their logs.

Each process writes stderr to its own file, never to a pipe: a pipe nobody drains would block a chatty
worker, and a file can be read after a SIGKILL.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: the repository root, put on PYTHONPATH so that workers can import ``tests.chaos.tasks``
ROOT = Path(__file__).resolve().parents[2]
TASKS_MODULE = "tests.chaos.tasks"

_numbers = itertools.count()


class CliProcess:
    """One ``python -m delayed_core.cli.main ...`` process with its stderr in ``log_dir``.

    :param args: the arguments after ``delayed`` (``["worker", "--broker", url, ...]``).
    :param log_dir: where the stderr file goes.
    :param env: extra environment variables.
    """

    def __init__(self, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_dir / f"{args[0]}-{next(_numbers)}.log"
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*self.command_prefix(), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(env or {}), cwd=log_dir,
            )

    @staticmethod
    def command_prefix() -> list[str]:
        """``delayed`` as a command line, run by this interpreter."""
        return [sys.executable, "-m", "delayed_core.cli.main"]

    @staticmethod
    def environment(extra: dict[str, str]) -> dict[str, str]:
        """This process's environment without DELAYED_* settings, the repo on PYTHONPATH, plus ``extra``."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("DELAYED_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(extra)
        return env

    @property
    def age(self) -> float:
        """Seconds since start."""
        return time.monotonic() - self.started

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.process.kill()
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM (graceful stop); does not wait."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit status; kill and raise if it takes longer than ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.args[0]} did not exit within {timeout}s; log:\n{self.log()[-3000:]}") from None

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> str:
        """Poll the log until it contains ``text``; return the log. Fails with the log on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if not self.alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in the log of {self.args[0]} within {timeout}s:\n{self.log()[-3000:]}")


def worker_args(url: str, queue: str, *, slots: int = 1, keep_alive_timeout: float = 1.0,
                keep_alive_interval: float = 0.25, extra: list[str] | None = None) -> list[str]:
    """``delayed worker`` arguments serving ``queue`` with the chaos task module allowed."""
    return [
        "worker", "--broker", url, "--queue", queue, "--slots", str(slots), "--import", TASKS_MODULE,
        "--keep-alive-timeout", str(keep_alive_timeout), "--keep-alive-interval", str(keep_alive_interval),
        "--dequeue-timeout", "0.5", "--log-level", "INFO", *(extra or []),
    ]


def sweeper_args(url: str, queue: str, interval: float = 0.5, max_recoveries: int = 0) -> list[str]:
    """``delayed sweeper`` arguments for ``queue``."""
    return ["sweeper", "--broker", url, "--queue", queue, "--interval", str(interval),
            "--max-recoveries", str(max_recoveries), "--log-level", "INFO"]


def poll(condition: Callable[[], object], timeout: float, interval: float = 0.05, message: str = "condition") -> None:
    """Call ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout}s")
