"""The redis-servers the tests start die with the test process, however it ends (tests/support/server_process).

A pytest killed by CI's time limit or a second Ctrl-C runs no teardown; its servers must not outlive it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.chaos.processes import poll
from tests.support.redis_server import RedisServer, require_redis_server

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.real_redis,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"),
]

#: a test process in miniature: starts a server through the support code, says which, then waits
CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.support.redis_server import RedisServer
server = RedisServer().start()
print(server.process.pid, server.port, server.dir, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie nobody reaps yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # the state field follows the command name


def test_a_redis_server_dies_with_the_sigkilled_process_that_started_it(tmp_path: Path) -> None:
    require_redis_server()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT)], cwd=tmp_path, stdout=subprocess.PIPE,
                             text=True)
    server_pid, server_dir = 0, ""
    try:
        assert child.stdout is not None
        pid_text, port_text, server_dir = child.stdout.readline().split()
        server_pid, port = int(pid_text), int(port_text)
        assert running(server_pid)
        assert answers(port), "the server must answer while its test process lives"
        child.kill()  # as CI's time limit does: no teardown runs
        child.wait(10)
        poll(lambda: not running(server_pid), 10, message="the orphaned redis-server gone")
        assert not answers(port)
    finally:
        child.kill()
        child.wait(10)
        if server_pid and running(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # never leave one behind, even when the test fails
        if server_dir:
            shutil.rmtree(server_dir, ignore_errors=True)  # the killed child could not remove it


def test_a_server_started_from_a_short_lived_thread_outlives_that_thread() -> None:
    """The kernel ties the parent-death signal to the forking thread: a server that a helper thread
    starts (a cluster test adds a node from one) must live on after that thread returns."""
    require_redis_server()
    server = RedisServer()
    native_ids: list[int] = []

    def start() -> None:
        native_ids.append(threading.get_native_id())
        server.start()

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(30)
    try:
        # The kernel sends the signal as the thread exits, before it drops the thread's /proc entry.
        poll(lambda: not Path(f"/proc/self/task/{native_ids[0]}").exists(), 10, message="the thread gone")
        assert server.ping(), "the server died with the thread that started it"
        assert server.process is not None and server.process.poll() is None
    finally:
        server.cleanup()


def answers(port: int) -> bool:
    """True when something on ``port`` answers a PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
