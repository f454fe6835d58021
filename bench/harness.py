"""Process plumbing shared by every measurement: pinning, the private redis-server, polling, RSS, stats.

Placement: the benchmark's own redis-server runs on CPU 0 and every client (producers, workers, the
measuring process) on CPU 1, so that a Redis round trip always crosses cores (~110 us on the reference
machine) instead of flipping between ~20 us and ~110 us as the scheduler moves processes around.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench/ runs as a script; its siblings (tests/support) are plain packages

from tests.support.redis_server import RedisServer  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1


def pinned(argv: Sequence[str], cpu: int) -> list[str]:
    """``argv`` prefixed with ``taskset -c cpu`` (unchanged when taskset or that CPU is missing)."""
    if shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


class PinnedRedisServer(RedisServer):
    """The tests' private redis-server, started under ``taskset`` on :data:`SERVER_CPU`."""

    def command(self) -> list[str]:
        """The redis-server command line, pinned."""
        return pinned(super().command(), SERVER_CPU)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> float:
    """Poll ``condition`` until true; return the ``time.perf_counter()`` at which it was seen true."""
    deadline = time.perf_counter() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g}s")
        time.sleep(interval)


def command_calls(client: redis.Redis) -> dict[str, int]:
    """``INFO commandstats`` as command name -> calls (the INFO calls themselves left out)."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}
    calls.pop("info", None)
    return calls


def calls_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands sent between two :func:`command_calls` snapshots (zero entries dropped)."""
    delta = {name: count - before.get(name, 0) for name, count in after.items()}
    return {name: count for name, count in sorted(delta.items()) if count}


def monitor_commands(url: str, seconds: float) -> dict[str, int]:
    """Commands clients send during ``seconds``, by name, seen through MONITOR (script-internal ones,
    which MONITOR tags ``lua``, left out). The listener thread is a daemon: it dies with this process."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    ready = threading.Event()

    def listen() -> None:
        with redis.Redis.from_url(url).monitor() as monitor:
            ready.set()
            while True:
                entry = monitor.next_command()
                if entry.get("client_type") != "lua":
                    name = entry["command"].split(" ", 1)[0].lower()
                    with lock:
                        counts[name] = counts.get(name, 0) + 1

    threading.Thread(target=listen, daemon=True).start()
    ready.wait(5.0)
    time.sleep(seconds)
    with lock:
        return dict(sorted(counts.items()))


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_processes(argvs: Sequence[Sequence[str]], env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """Start worker processes from the repository root, each in its own process group (so that a
    worker's children, e.g. a prefork pool, are stopped with it)."""
    return [subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True) for argv in argvs]


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    """SIGTERM each process group, then SIGKILL what is left after ``grace`` seconds."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check_alive(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Raise with the worker's stderr when one of them exited early (a broken peer or config)."""
    for process in processes:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace")[-1500:] if process.stderr else ""
            raise RuntimeError(f"worker exited with {process.returncode}: {err}")


@dataclass(frozen=True)
class Summary:
    """Median and spread of repeated measurements."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarise ``values`` (at least one)."""
        return cls(statistics.median(values), min(values), max(values), len(values))
