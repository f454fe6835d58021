"""Periodic tasks on a fake clock: ticks, DST, missed-tick policies, and decoration-time errors."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from zoneinfo import ZoneInfo

import pytest

from delayed_core import ConfigError, Delayed
from delayed_core.periodic_loop import PeriodicLoop

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *fields: int, fold: int = 0) -> float:
    return dt.datetime(*fields, tzinfo=zone, fold=fold).timestamp()


def local(zone: ZoneInfo, t: float) -> str:
    return dt.datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M%z")


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def job() -> None:
    """The periodic function of these tests (never run: they look at what was enqueued)."""


def enqueued_ticks(app: Delayed, queue: str = "default") -> list[float]:
    broker = app.broker(queue)
    ticks = []
    while (raw := broker.dequeue("reader", 0.01)) is not None:
        ticks.append(app.serializer.loads(raw).meta["tick"])
        broker.release("reader")
    return ticks


def drive(app: Delayed, start: float, end: float, step: float = 60.0, processes: int = 3) -> list[float]:
    """Step ``processes`` loops sharing one broker from ``start`` to ``end`` on a fake clock."""
    clock = FakeClock(start)
    loops = [PeriodicLoop(app, clock) for _ in range(processes)]
    while clock.now <= end:
        for loop in loops:
            loop.step()
        clock.now += step
    return enqueued_ticks(app)


def periodic_app(name: str, **schedule: object) -> Delayed:
    app = Delayed(f"memory://periodic-{name}", load_entry_points=False)
    app.periodic(**schedule, name="tests:job")(job)  # type: ignore[arg-type]
    return app


@pytest.mark.parametrize(("zone", "expression", "day", "expected"), [
    # Berlin skips 02:00-03:00 on 2026-03-29: the 02:30 run happens once, at 03:00 CEST
    (BERLIN, "30 2 * * *", (2026, 3, 29), ["03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200"]),
    # Berlin repeats 02:00-03:00 on 2026-10-25: the 02:30 run happens once, at the first 02:30
    (BERLIN, "30 2 * * *", (2026, 10, 25), ["10-24 02:30+0200", "10-25 02:30+0200", "10-26 02:30+0100"]),
    # New York repeats 01:00-02:00 on 2026-11-01: the 01:30 run happens once
    (NEW_YORK, "30 1 * * *", (2026, 11, 1), ["10-31 01:30-0400", "11-01 01:30-0400", "11-02 01:30-0500"]),
])
def test_daily_schedule_runs_once_on_dst_days(zone: ZoneInfo, expression: str, day: tuple[int, int, int],
                                              expected: list[str]) -> None:
    app = periodic_app(f"dst-{expression}-{day}", cron=expression, tz=str(zone))
    start = at(zone, *day, 12) - 2 * 86400
    ticks = drive(app, start, start + 3 * 86400)
    assert [local(zone, t) for t in ticks] == expected


def test_every_runs_each_tick_once_across_processes() -> None:
    app = periodic_app("every", every=1)
    ticks = drive(app, 1_000_000.2, 1_000_030.2, step=0.1)
    assert ticks == [float(t) for t in range(1_000_001, 1_000_031)]


@pytest.mark.parametrize(("policy", "expected"), [
    ({}, [1020, 1620, 1680]),                        # latest: the latest missed tick once
    ({"catch_up": True}, [1020, *range(1080, 1621, 60), 1680]),
    ({"missed": "skip"}, [1020, 1680]),
])
def test_missed_ticks_follow_the_policy(policy: dict[str, object], expected: list[int]) -> None:
    app = periodic_app(f"missed-{policy}", every=60, **policy)   # ticks at the multiples of 60
    clock = FakeClock(1001.0)
    loop = PeriodicLoop(app, clock)
    loop.step()                                     # the schedule starts at 1001: nothing before runs
    clock.now = 1021.0
    loop.step()                                     # 1020, on time
    loop = PeriodicLoop(app, clock)                 # every process down from 1021 to 1650 ...
    clock.now = 1650.0
    loop.step()                                     # ... back 30 s after the 1620 tick: 1080-1620 missed
    clock.now = 1681.0
    loop.step()                                     # 1680, on time
    assert enqueued_ticks(app) == [float(t) for t in expected]


def test_a_restarted_process_does_not_run_a_claimed_tick_again() -> None:
    app = periodic_app("restart", every=10)
    clock = FakeClock(105.0)
    PeriodicLoop(app, clock).step()
    clock.now = 111.0
    PeriodicLoop(app, clock).step()
    PeriodicLoop(app, clock).step()  # a new process at the same moment: 110 was claimed already
    assert enqueued_ticks(app) == [110.0]


@pytest.mark.parametrize(("schedule", "message"), [
    ({"cron": "61 * * * *"}, "bad cron expression '61 \\* \\* \\* \\*': Bad minute"),
    ({"cron": "* * *"}, "bad cron expression '\\* \\* \\*': Wrong number of fields"),
    ({"cron": "0 * * * *", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"every": 0}, "every must be a number of seconds > 0, not 0"),
    ({"every": -5}, "every must be a number of seconds > 0, not -5"),
    ({}, "periodic needs exactly one of cron='...' and every=SECONDS"),
    ({"every": 5, "cron": "* * * * *"}, "periodic needs exactly one of"),
    ({"every": 5, "tz": "UTC"}, "tz applies to cron schedules only"),
    ({"every": 5, "missed": "sometimes"}, "missed must be one of latest, all, skip"),
])
def test_bad_schedules_fail_at_decoration_in_one_line(schedule: dict[str, object], message: str) -> None:
    app = Delayed("memory://periodic-bad", load_entry_points=False)
    with pytest.raises(ConfigError, match=message) as caught:
        app.periodic(**schedule)(job)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_adopted_from_an_imported_module() -> None:
    """A worker's app that imports a module adopts that module's periodic functions."""
    from delayed_core.functions import FunctionRegistry

    registry = FunctionRegistry()
    registry.allow_module("tests.periodic_tasks")
    spec = registry.periodic()["tests.periodic_tasks:every_second"]
    assert spec.schedule.describe() == "every 1s" and spec.queue == "periodicq"


def test_a_sweeper_takes_part_in_scheduling() -> None:
    """A sweeper whose app knows a periodic function claims its ticks too (no worker running)."""
    import threading

    app = periodic_app("sweeper", every=0.2)
    sweeper = app.sweeper()
    thread = threading.Thread(target=sweeper.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(app.broker("default")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
        thread.join(10)
    ticks = enqueued_ticks(app)
    assert len(ticks) >= 3 and all(round(b - a, 3) == 0.2 for a, b in itertools.pairwise(ticks))


def failing_job() -> None:
    """A periodic function that always fails."""
    raise RuntimeError("the report server is down")


def test_a_worker_records_the_outcome_of_each_run() -> None:
    """The worker's periodic loop enqueues, the worker runs, and the record says how the run ended."""
    import threading

    app = Delayed("memory://periodic-outcome", load_entry_points=False, dequeue_timeout=0.1,
                  dead_letter_failed=False)
    app.periodic(every=0.2, name="tests:good")(job)
    app.periodic(every=0.2, name="tests:bad")(failing_job)
    worker = app.worker()
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    records = app.broker("default").periodic_records  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                "outcome" in records().get(name, {}) for name in ("tests:good", "tests:bad")):
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(10)
    good, bad = records()["tests:good"], records()["tests:bad"]
    assert good["outcome"] == "succeeded" and good["schedule"] == "every 0.2s"
    assert bad["outcome"].startswith("failed: ") and "the report server is down" in bad["outcome"]
    assert float(good["last_run_tick"]) <= float(good["last_tick"]) < float(good["next_run"])


def test_fractional_every_on_epoch_sized_times() -> None:
    """Regression: 1796133702.6 / 0.2 in floats is 8980668512.99999, so the tick after 702.6 was 702.6."""
    from delayed_core.periodic_schedule import Every

    every = Every(0.2)
    assert every.next_after(1796133702.6) == 1796133702.8
    assert every.latest(1796133702.6) == 1796133702.6
    assert every.ticks(1796133702.6, 1796133703.0) == [1796133702.8, 1796133703.0]
