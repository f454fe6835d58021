"""The crash-point harness on a real redis-server: every point x mode (x executor), no task lost.

Each case kills (SIGKILL) or cuts off (CLIENT KILL of every connection) one worker at one named protocol
boundary, then proves that all 20 tasks ran, with at most the documented duplicates. The SIGKILL cases, and
``before_hand_back`` (a worker that exits on SIGTERM), run ``delayed worker`` processes with the shipped
harness, a replacement worker and a sweeper. The other ``disconnect`` cases kill nothing: their worker runs
in a thread of this process with the same action, settings and checks (tests/support/crash_inproc.py),
which proves the same for a fraction of the process starts. The measured table is in docs/reliability.md.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from delayed_core.config import load_config
from delayed_core.errors import ConfigError
from delayed_core.testing.crash_run import CrashCase, CrashHarness
from delayed_core.testing.crash_switches import PLUGIN_MODULE
from delayed_core.testing.crashpoint_plugin import connection_cutter, from_environment
from delayed_core.testing.crashpoints import check_recovered, crash_cases
from delayed_core.testing.processes import clean_environment, delayed_command
from delayed_redis.broker import RedisBroker
from delayed_redis.connection import client_from_url
from delayed_redis.testing import cut_connections
from tests.support.crash_inproc import BIND_BOTH, run_disconnect_case
from tests.support.redis_server import RedisServer, require_redis_server

#: Real bugs the harness found; each case must keep failing until the worker is fixed (strict xfail).
KNOWN_BUGS: dict[str, str] = {}


EXECUTORS = ("thread", "subprocess", "fork")


def in_process(case: CrashCase) -> bool:
    """A disconnect needs no process of its own, except at the hand-back (see the module docstring)."""
    return case.mode == "disconnect" and case.point != "before_hand_back"


def _params(in_this_process: bool) -> list[object]:
    cases = [case for case in crash_cases(executors=EXECUTORS) if in_process(case) == in_this_process]
    return [pytest.param(case, id=case.label, marks=[pytest.mark.xfail(reason=KNOWN_BUGS[case.label], strict=True)]
                         if case.label in KNOWN_BUGS else []) for case in cases]


@pytest.mark.real_redis
@pytest.mark.parametrize("case", _params(in_this_process=False))
def test_no_task_is_lost_at_any_crash_point(
    crashpoint_harness: Callable[..., CrashHarness], real_redis: RedisServer, case: CrashCase
) -> None:
    report = crashpoint_harness(real_redis.url).run(case)
    print(report.summary())
    check_recovered(report)


@pytest.fixture(scope="module")
def two_address_server() -> Iterator[RedisServer]:
    """A redis-server on two loopback addresses: the in-process worker's, and everyone else's."""
    require_redis_server()
    server = RedisServer(BIND_BOTH).start()
    yield server
    server.cleanup()


@pytest.mark.real_redis
@pytest.mark.parametrize("case", _params(in_this_process=True))
def test_no_task_is_lost_when_a_worker_thread_is_cut_off(two_address_server: RedisServer, tmp_path: Path,
                                                         case: CrashCase) -> None:
    report = run_disconnect_case(two_address_server.port, case, tmp_path)
    print(report.summary())
    check_recovered(report)


def test_every_case_runs_once() -> None:
    """The two tests above split the cases between them: none is left out, none runs twice."""
    everything = {case.label for case in crash_cases(executors=EXECUTORS)}
    split = [p.values[0].label for p in [*_params(False), *_params(True)]]  # type: ignore[attr-defined]
    assert sorted(split) == sorted(everything)
    assert len(everything) == 40


def test_the_pytest_plugin_is_registered_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("delayed-crashpoints")


def test_every_point_is_covered_in_both_modes() -> None:
    labels = {case.label for case in crash_cases(executors=("thread",))}
    assert len(labels) == 14
    assert "mid_task-disconnect-subprocess" not in {c.label for c in crash_cases(executors=("subprocess",))}


@pytest.mark.parametrize(("env", "message"), [
    ({"DELAYED_CRASHPOINT": "nowhere"}, "DELAYED_CRASHPOINT='nowhere' is not a crash point; choose from"),
    ({"DELAYED_CRASHPOINT": "after_task", "DELAYED_CRASHPOINT_MODE": "nap"}, "choose sigkill or disconnect"),
    ({"DELAYED_CRASHPOINT": "after_task", "DELAYED_CRASHPOINT_AFTER": "0"}, "expected an integer >= 1"),
])
def test_bad_switches_are_refused_in_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        from_environment(env)


def test_unarmed_without_the_switch() -> None:
    assert from_environment({}) is None
    action = from_environment({"DELAYED_CRASHPOINT": "after_task", "DELAYED_CRASHPOINT_AFTER": "4"})
    assert action is not None and (action.point, action.mode, action.after) == ("after_task", "sigkill", 4)


def test_the_switches_are_not_taken_for_unknown_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("DELAYED_CRASHPOINT", "after_task"), ("DELAYED_CRASHPOINT_MODE", "disconnect"),
                        ("DELAYED_CRASHPOINT_AFTER", "2"), ("DELAYED_CRASHPOINT_PID", "1")):
        monkeypatch.setenv(name, value)
    assert load_config({})["slots"] == 1


@pytest.mark.real_redis
def test_a_worker_with_a_bad_switch_exits_with_one_line(real_redis: RedisServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [*delayed_command(), "worker", "--broker", real_redis.url, "--plugin", PLUGIN_MODULE],
        env=clean_environment({"DELAYED_CRASHPOINT": "nowhere"}), cwd=tmp_path,
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "'nowhere' is not a crash point" in result.stderr


_OTHER_PROCESS = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"PING\\r\\n"); sock.recv(64)
print("connected", flush=True)
sys.stdin.readline()
sock.sendall(b"PING\\r\\n"); print(sock.recv(64).decode().strip(), flush=True)
"""


@pytest.mark.real_redis
def test_cut_connections_closes_this_process_connections_only(real_redis: RedisServer) -> None:
    other = subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS, str(real_redis.port)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "connected"
        broker = RedisBroker("cut", client_from_url(real_redis.url))
        assert broker.held("nobody") is None  # opens a pooled connection
        mine = socket.create_connection((real_redis.host, real_redis.port))
        # The pooled connection and ``mine``, plus any other client this test process still holds.
        assert cut_connections(broker) >= 2
        assert mine.recv(64) == b""  # closed by the server
        assert broker.held("nobody") is None  # the pool notices the dead connection and opens another
        other.stdin.write("go\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "+PONG"  # another process's connection is untouched
        mine.close()
    finally:
        other.kill()
        other.wait(10)


class _NoRecovery(CrashHarness):
    """A harness whose sweeper serves another queue: nothing recovers what a killed worker held."""

    def _sweeper_args(self, queue: str) -> list[str]:
        return super()._sweeper_args(queue + "-elsewhere")


@pytest.mark.real_redis
def test_the_harness_reports_a_task_nobody_recovers(real_redis: RedisServer, tmp_path: Path) -> None:
    harness = _NoRecovery(real_redis.url, tmp_path, drain_timeout=3.0)
    report = harness.run(CrashCase("after_dequeue", "sigkill", tasks=5))
    assert report.fired
    assert report.lost == [0]  # the task the killed worker held when it died
    assert "worker-armed" in report.diagnosis
    with pytest.raises(AssertionError, match=r"tasks never ran: \[0\]"):
        check_recovered(report)


def test_disconnect_mode_finds_the_cut_in_the_brokers_package() -> None:
    broker = RedisBroker("q", client_from_url("redis://127.0.0.1:1/0"))  # never connects
    assert connection_cutter(broker) is cut_connections

    class ThirdPartyBroker:
        """Defined in package ``tests``, which has no ``testing.cut_connections``."""

    with pytest.raises(ConfigError, match=r"needs tests\.testing\.cut_connections\(broker\); broker "
                                          r"ThirdPartyBroker does not provide it"):
        connection_cutter(ThirdPartyBroker())
