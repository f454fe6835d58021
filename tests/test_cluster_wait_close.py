"""Closing a broker of the cluster layout while a slot's wait helper is at work (cluster_wait.py).

Seen once in ``test_cluster_contract.py::test_retry_then_dead_letter[cluster]``: pytest warned of an
unhandled exception in a wait helper thread, hiredis' ``can_read`` on a closed socket. A helper goes
on to its next BLPOP while the wait it served returns; on its way it takes a pooled connection, which
redis-py checks with ``can_read``. The test then closed the broker, whose pool disconnects every
connection, in use or not: the helper's socket closed between the parser reading it and polling it,
and the parser raised ``ValueError``, which is no redis-py error, so it escaped the helper.

Both interleavings run here on one redis-server in the cluster key layout (the same helpers and the
same BLPOPs as on a Redis Cluster, with one node): the close in the middle of that check, made
deterministic by closing from inside it; and the close while a BLPOP is blocked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest
import redis._parsers.hiredis as hiredis_parser

from delayed_core import Delayed
from delayed_core.testing.processes import wait_until
from delayed_redis.cluster_broker import ClusterBroker
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.real_redis
WORKER = "c" * 32


@pytest.fixture
def broker(real_redis: RedisServer) -> Iterator[ClusterBroker]:
    """A broker of the cluster layout on the plain test server (its app closed after the test)."""
    app = Delayed(real_redis.url, load_entry_points=False, key_layout="cluster")
    broker = app.broker("closing")
    assert isinstance(broker, ClusterBroker)
    yield broker
    app.close()


@pytest.fixture
def unhandled(monkeypatch: pytest.MonkeyPatch) -> list[threading.ExceptHookArgs]:
    """Exceptions that escape a thread during the test (passed on to pytest's own hook too)."""
    seen: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        seen.append(args)
        previous(args)

    monkeypatch.setattr(threading, "excepthook", record)
    return seen


@pytest.fixture
def helpers() -> Callable[[], list[threading.Thread]]:
    """The wait helper threads alive now that the test started (another test's may still idle out)."""
    before = set(threading.enumerate())
    return lambda: [thread for thread in threading.enumerate()
                    if thread.name.startswith("delayed-wait") and thread not in before]


def test_a_close_in_the_middle_of_a_helpers_connection_check_ends_the_wait_quietly(
        broker: ClusterBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        unhandled: list[threading.ExceptHookArgs], helpers: Callable[[], list[threading.Thread]]) -> None:
    """The helper is stopped inside the pool's ``can_read`` check of its connection, after the parser
    read its socket and before it polls it; the broker closes right there (from that thread: the only
    way to put the close exactly there every time); then the check goes on, on the closed socket.
    Before the fix the ValueError it raises escaped the helper thread."""
    original = hiredis_parser._socket_can_read
    closed_here = threading.Event()

    def close_first(sock: object, timeout: float) -> bool:
        if threading.current_thread().name.startswith("delayed-wait") and not closed_here.is_set():
            closed_here.set()
            broker.close()
        return original(sock, timeout)

    monkeypatch.setattr(hiredis_parser, "_socket_can_read", close_first)
    caplog.set_level(logging.INFO, logger="delayed")
    taken: list[bytes | None] = []
    slot = threading.Thread(target=lambda: taken.append(broker.dequeue(WORKER, 10.0)))
    slot.start()
    slot.join(15)
    assert closed_here.is_set(), "the helper never checked a pooled connection"
    assert not slot.is_alive() and taken == [None]  # the wait ended with the close, with nothing
    for helper in helpers():
        helper.join(5)
    assert helpers() == []
    assert [args.exc_value for args in unhandled] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_closing_the_broker_ends_a_blocked_wait_and_its_helpers(
        broker: ClusterBroker, real_redis: RedisServer, caplog: pytest.LogCaptureFixture,
        unhandled: list[threading.ExceptHookArgs], helpers: Callable[[], list[threading.Thread]]) -> None:
    """A slot waits, its helper's BLPOP blocked on the server; the broker closes from another thread.
    The close ends the BLPOP and the helper before it disconnects (so nothing reads a closed socket):
    once ``close()`` returns no helper is left, the wait has returned empty, nothing is logged above
    INFO, and nothing stays blocked on the server."""
    caplog.set_level(logging.INFO, logger="delayed")
    client = real_redis.client()
    taken: list[bytes | None] = []
    slot = threading.Thread(target=lambda: taken.append(broker.dequeue(WORKER, 25.0)))
    slot.start()
    assert wait_until(lambda: client.info("clients")["blocked_clients"] == 1, 10)
    broker.close()
    assert helpers() == []  # joined by close(), not left to end by themselves
    slot.join(5)
    assert not slot.is_alive() and taken == [None]
    assert client.info("clients")["blocked_clients"] == 0
    assert [args.exc_value for args in unhandled] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
