"""The per-minute counters behind the dashboard's chart (``N_throughput``), counted inside the release and
dead-letter scripts: what they count, that they stay small and expire, that they never break a release,
and what they cost a busy slot (no round trip; one HINCRBY inside the script, timed with ``-s``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from delayed_core import DeadLetter
from delayed_redis import scripts
from delayed_redis.broker import RedisBroker
from delayed_redis.monitoring import this_minute
from tests.conftest import Backend

WID = "a" * 32


def busy_broker(backend: Backend, tasks: int, queue: str = "jobs") -> RedisBroker:
    """A broker whose slot WID holds the first of ``tasks`` queued tasks."""
    broker = backend.app().broker(queue)
    assert isinstance(broker, RedisBroker)
    assert broker.claim_worker_id(WID, 60)
    broker.enqueue([f"t{n}".encode() for n in range(tasks)])
    assert broker.dequeue(WID, 1) == b"t0"
    return broker


def test_releases_count_as_done_and_dead_letters_as_failed(backend: Backend) -> None:
    broker = busy_broker(backend, 4)
    before = this_minute()
    assert broker.release(WID, take_next=True) == b"t1"
    assert broker.release(WID, take_next=True) == b"t2"
    broker.dead_letter(WID, DeadLetter(task=b"t2", reason="failed").to_json())
    assert broker.dequeue(WID, 1) == b"t3"
    assert broker.release(WID, take_next=False) is None
    assert broker.release(WID, take_next=False) is None  # held nothing: not counted
    counts = broker.throughput()
    assert (sum(counts.done), sum(counts.failed)) == (3, 1)
    assert len(counts.minutes) == 15 and counts.minutes[-1] >= before
    stored = {key.decode() for key in backend.client.hkeys("jobs_throughput")}
    assert stored <= {f"{kind}:{m}" for kind in "df" for m in range(before, before + 2)}


def test_a_dead_letter_released_by_no_slot_counts_too(backend: Backend) -> None:
    broker = backend.app().broker("jobs")
    broker.dead_letter(None, DeadLetter(task=b"x", reason="poison").to_json())
    assert sum(broker.throughput().failed) == 1


def test_old_minutes_are_dropped_and_the_key_expires(backend: Backend) -> None:
    broker = busy_broker(backend, 2)
    now = this_minute()
    backend.client.hset("jobs_throughput", mapping={f"d:{now - 15}": 7, f"d:{now - 14}": 5, f"f:{now - 99}": 1,
                                                    "junk": 1})
    broker.release(WID, take_next=True)
    remaining = {key.decode() for key in backend.client.hkeys("jobs_throughput")}
    if this_minute() == now:  # (a minute boundary in between would shift the window by one)
        assert remaining == {f"d:{now - 14}", f"d:{now}"}
        assert sum(broker.throughput().done) == 6
    assert 15 * 60_000 < backend.client.pttl("jobs_throughput") <= 16 * 60_000


def test_a_wrong_typed_counter_key_never_breaks_a_release(backend: Backend) -> None:
    backend.client.set("jobs_throughput", "not a hash")
    broker = busy_broker(backend, 2)
    assert broker.release(WID, take_next=True) == b"t1"
    broker.dead_letter(WID, DeadLetter(task=b"t1", reason="failed").to_json())
    assert backend.client.hlen("jobs_processing") == 0 and backend.client.llen("jobs_dead") == 1
    assert backend.client.get("jobs_throughput") == b"not a hash"


def test_a_worker_of_several_queues_counts_on_the_queue_it_released(backend: Backend) -> None:
    app = backend.app()
    for queue in ("high", "low"):
        app.broker(queue).enqueue([f"{queue}-task".encode()])
    broker = app.broker("high")
    assert broker.claim_worker_id(WID, 60)
    assert broker.dequeue_first(WID, ["high", "low"], 1) == ("high", b"high-task")
    assert broker.release_and_take_first(WID, "high", ["high", "low"], True) == ("low", b"low-task")
    assert broker.release_and_take_first(WID, "low", ["high", "low"], False) is None
    assert sum(app.broker("high").throughput().done) == 1
    assert sum(app.broker("low").throughput().done) == 1


def counting(call: Callable[..., Any], sent: list[str]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        sent.append(str(args[0]))
        return call(*args)
    return wrapped


def test_a_busy_slot_still_makes_one_round_trip_per_task(real_backend: Backend) -> None:
    tasks = 2000
    broker = busy_broker(real_backend, tasks + 2)
    assert broker.release(WID, take_next=True) == b"t1"  # loads the script if this server lacks it
    sent: list[str] = []
    broker._call = counting(broker._call, sent)
    real_backend.client.config_resetstat()
    started = time.perf_counter()
    for _ in range(tasks):
        assert broker.release(WID, take_next=True) is not None
    elapsed = time.perf_counter() - started
    assert sent == ["EVALSHA"] * tasks
    stats = real_backend.client.info("commandstats")
    assert stats["cmdstat_hincrby"]["calls"] == tasks and "cmdstat_time" not in stats
    counters_us = stats["cmdstat_hincrby"]["usec"] / tasks
    script_us = stats["cmdstat_evalsha"]["usec"] / tasks
    print(f"\nrelease_take: 1 round trip per task, {elapsed / tasks * 1e6:.1f} us per call seen by the slot; "
          f"in Redis {script_us:.2f} us per script, of which the counter's HINCRBY {counters_us:.2f} us")


def test_the_counters_cost_in_microseconds(real_backend: Backend) -> None:
    """The release_take script with and without its count_minute line, alternated on one connection:
    Redis's own time per script (INFO commandstats; steadier than the client's clock on a shared machine)
    and the time the slot sees."""
    without = scripts.RELEASE_TAKE.source.replace("count_minute(KEYS[5], 'd:', ARGV[3])", "")
    assert without != scripts.RELEASE_TAKE.source
    shas = {"with": real_backend.client.script_load(scripts.RELEASE_TAKE.source),
            "without": real_backend.client.script_load(without)}
    broker = busy_broker(real_backend, 1)
    k = broker.keys
    keys = (k.queue, k.notifications, k.processing, k.recoveries, k.throughput)  # as release() sends them
    rounds, per_round = 7, 1000
    client_us: dict[str, list[float]] = {"with": [], "without": []}
    server_us: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(rounds):
        for variant in ("with", "without"):
            broker.enqueue([b"task"] * per_round)
            real_backend.client.config_resetstat()
            started = time.perf_counter()
            for _ in range(per_round):
                broker._call("EVALSHA", shas[variant], len(keys), *keys, WID, "1", this_minute())
            client_us[variant].append((time.perf_counter() - started) / per_round * 1e6)
            stats = real_backend.client.info("commandstats")["cmdstat_evalsha"]
            assert stats["calls"] == per_round
            server_us[variant].append(stats["usec"] / per_round)
    assert real_backend.client.llen("jobs") == 0
    server = {variant: sorted(values)[rounds // 2] for variant, values in server_us.items()}
    client = {variant: sorted(values)[rounds // 2] for variant, values in client_us.items()}
    print(f"\nrelease_take, median of {rounds} x {per_round}: in Redis {server['with']:.2f} us with counters, "
          f"{server['without']:.2f} us without ({server['with'] - server['without']:+.2f} us); seen by the slot "
          f"{client['with']:.1f} us with, {client['without']:.1f} us without")
