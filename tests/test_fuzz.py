"""Fuzz: garbage in the queue never crashes or stalls a worker, and every bad entry is dead-lettered.

Entries are pushed raw (``RPUSH N entry`` + ``RPUSH N_noti 1``) as any client could. A worker thread
serves the queue throughout; after each example the queue and ``N_processing`` must empty and
``entries in == tasks succeeded + dead letters``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delayed_core import hookimpl
from delayed_core.deadletter import Reason
from delayed_core.outcome import Outcome
from delayed_core.task import PyTask
from tests.chaos.inproc import start_worker_thread, stop_worker_thread
from tests.conftest import Backend

QUEUE = "fuzz"
MODULE = "tests.chaos.allowed_tasks"
REASONS = {Reason.UNDECODABLE, Reason.NOT_ALLOWED, Reason.WRONG_LANGUAGE, Reason.FAILED, Reason.TIMEOUT,
           Reason.CRASHED}
#: CI runs this many examples on fakeredis; real Redis gets a third of them
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))


class Successes:
    """Counts succeeded tasks through the lifecycle hook."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        with self.lock:
            self.count += 1


# -- strategies -----------------------------------------------------------------------------------
def _str_header(size: int) -> bytes:
    """msgpack str header for ``size`` bytes (lets us write a str that is not UTF-8)."""
    if size < 32:
        return bytes([0xA0 | size])
    if size < 256:
        return bytes([0xD9, size])
    return bytes([0xDA]) + size.to_bytes(2, "big")


paths = st.one_of(st.sampled_from([f"{MODULE}:add", f"{MODULE}:system", f"{MODULE}:_private", "os:system",
                                   "builtins:eval", "main.f", "nomodule:f", ":", ""]), st.text(max_size=30))
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10,
)
random_bytes = st.binary(max_size=200)
wrong_shapes = st.one_of(
    values.map(msgpack.packb),  # maps, ints, nested arrays, nil ...
    st.tuples(paths, values, values, values, values).map(lambda parts: msgpack.packb(list(parts))),
    st.lists(values, min_size=6, max_size=8).map(lambda parts: msgpack.packb([f"{MODULE}:add", *parts])),
)
truncated = st.tuples(paths, st.lists(values, max_size=3), st.data()).map(
    lambda t: (lambda packed: packed[: t[2].draw(st.integers(0, max(0, len(packed) - 1)))])(
        msgpack.packb([t[0], t[1]])))
non_utf8_paths = st.binary(min_size=1, max_size=20).filter(lambda raw: not _is_utf8(raw)).map(
    lambda raw: b"\x92" + _str_header(len(raw)) + raw + msgpack.packb([]))
wrong_arguments = st.tuples(values, values).map(lambda ab: msgpack.packb([f"{MODULE}:add", list(ab)]))
# The optional fifth element (meta): any map, most often with an "attempt" of any type. The task fails
# (wrong argument types) and may retry, so a bad attempt would meet the failure path, where it once
# made the slot re-run the task forever.
metas = st.one_of(
    st.dictionaries(st.sampled_from(["attempt", "trace", ""]), values, max_size=3),
    st.fixed_dictionaries({"attempt": values}),
    st.fixed_dictionaries({"attempt": st.integers(-(2**63), 2**64 - 1)}),
)
with_meta = st.tuples(st.sampled_from([f"{MODULE}:add", f"{MODULE}:accept"]), st.lists(values, max_size=2),
                      st.sampled_from([0, 1, 2]), metas).map(
    lambda t: msgpack.packb([t[0], t[1], {}, t[2], t[3]]))
entries = st.one_of(random_bytes, wrong_shapes, truncated, non_utf8_paths, wrong_arguments, with_meta)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


# -- the harness ----------------------------------------------------------------------------------
class FuzzTarget:
    """A queue with a worker thread serving it, and the bookkeeping to check each batch."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.client = backend.client
        self.client.delete(QUEUE, f"{QUEUE}_noti", f"{QUEUE}_processing", f"{QUEUE}_dead")
        self.successes = Successes()
        app = backend.app(imports=[MODULE], plugins=[self.successes], dequeue_timeout=0.05, slots=2,
                          retry_backoff=0.0, dead_letter_max=1_000_000)
        self.worker = app.worker(QUEUE)
        self.pushed = 0

    def push(self, raw_entries: list[bytes]) -> None:
        """Push entries the way any Redis client could, one notification each."""
        with self.client.pipeline(transaction=True) as pipe:
            for raw in raw_entries:
                pipe.rpush(QUEUE, raw).rpush(f"{QUEUE}_noti", b"1")
            pipe.execute()
        self.pushed += len(raw_entries)

    def settled(self) -> bool:
        """Every pushed entry either ran or was dead-lettered, and nothing is left."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(QUEUE).hlen(f"{QUEUE}_processing").llen(f"{QUEUE}_dead")
            length, processing, dead = pipe.execute()
        return length == 0 and processing == 0 and self.successes.count + dead == self.pushed

    def wait_settled(self, timeout: float = 10.0) -> None:
        """Poll until settled; a stall or a dead slot fails with the queue state."""
        deadline = time.monotonic() + timeout
        while not self.settled():
            assert all(slot.is_alive() for slot in self.worker.slots), "a worker slot died"
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"stalled: pushed {self.pushed}, succeeded {self.successes.count}, dead "
                    f"{self.client.llen(QUEUE + '_dead')}, queue {self.client.llen(QUEUE)}, processing "
                    f"{self.client.hgetall(QUEUE + '_processing')}")
            time.sleep(0.002)

    def check_dead_letters(self) -> None:
        """Every dead letter says why, and keeps the exact bytes."""
        for raw in self.client.lrange(f"{QUEUE}_dead", 0, -1):
            letter = json.loads(raw)
            assert letter["reason"] in REASONS, letter
            assert letter["error"], letter
            bytes.fromhex(letter["task"])


@contextlib.contextmanager
def fuzz_target(backend: Backend) -> Iterator[FuzzTarget]:
    """A FuzzTarget whose worker thread runs for the duration of the block."""
    target = FuzzTarget(backend)
    thread = start_worker_thread(target.worker)
    try:
        yield target
    finally:
        stop_worker_thread(target.worker, thread)
    assert target.client.llen(f"{QUEUE}_noti") == 0


def test_garbage_is_dead_lettered_and_never_stops_the_worker(backend: Backend) -> None:
    examples = EXAMPLES if backend.name == "fake" else max(20, EXAMPLES // 3)
    with fuzz_target(backend) as target:

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(batch=st.lists(entries, min_size=1, max_size=6))
        def check(batch: list[bytes]) -> None:
            target.push(batch)
            target.wait_settled()

        check()
        target.check_dead_letters()
        assert target.pushed >= examples
        assert target.client.llen(f"{QUEUE}_dead") > 0


@pytest.mark.parametrize("size_mb", [3])
def test_huge_payloads(backend: Backend, size_mb: int) -> None:
    blob = os.urandom(size_mb * 1024 * 1024)
    batch = [
        blob,  # random bytes
        msgpack.packb(["os:system", [blob]]),  # not allowed, huge
        msgpack.packb([f"{MODULE}:accept", [blob]]),  # allowed: runs
        msgpack.packb([f"{MODULE}:add", [blob, 1]]),  # wrong argument type: fails, dead-lettered
    ]
    with fuzz_target(backend) as target:
        target.push(batch)
        target.wait_settled(30)
        target.check_dead_letters()
        reasons = sorted(json.loads(raw)["reason"] for raw in target.client.lrange(f"{QUEUE}_dead", 0, -1))
        assert reasons == sorted([Reason.UNDECODABLE, Reason.NOT_ALLOWED, Reason.FAILED])
        assert target.successes.count == 1
        # The dead letter keeps the task byte for byte, so it can be inspected or requeued.
        kept = {bytes.fromhex(json.loads(raw)["task"]) for raw in target.client.lrange(f"{QUEUE}_dead", 0, -1)}
        assert blob in kept
