"""Periodic tasks across real processes: three workers with ``every=1`` on a real redis-server, one of
them SIGKILLed in the middle; every tick runs exactly once. Plus ``delayed periodic list``."""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from tests.chaos.processes import poll
from tests.conftest import Backend
from tests.support.cli import DELAYED, delayed, user_environment

TASKS = textwrap.dedent("""
    from delayed_core import Delayed

    app = Delayed()

    @app.periodic(every=1, queue="periodicq")
    def beat():
        pass

    @app.periodic(cron="0 3 * * *", tz="Europe/Berlin", queue="periodicq")
    def nightly():
        pass
""")

#: a plugin recording which process ran which tick, and when (the tick travels in the task's meta)
RECORDER = textwrap.dedent("""
    import os, time
    import redis
    from delayed_core import hookimpl

    record = redis.Redis.from_url(os.environ["DELAYED_BROKER_URL"])

    @hookimpl
    def delayed_task_started(queue, task, worker_id):
        record.rpush("runs", f"{task.meta['tick']} {os.getpid()} {time.time():.3f}")
""")


def start_worker(folder: Path, env: dict[str, str], index: int) -> subprocess.Popen[bytes]:
    log = (folder / f"worker{index}.log").open("wb")
    return subprocess.Popen([DELAYED, "worker", "--import", "ptasks", "--plugin", "recorder", "--queue",
                             "periodicq", "--dequeue-timeout", "1", "--keep-alive-timeout", "2",
                             "--keep-alive-interval", "0.5"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def test_three_workers_one_sigkilled_every_tick_runs_exactly_once(real_backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "ptasks.py").write_text(TASKS)
    (tmp_path / "recorder.py").write_text(RECORDER)
    env = user_environment({"DELAYED_BROKER_URL": real_backend.url, "PYTHONPATH": str(tmp_path)})
    client = real_backend.client
    workers = [start_worker(tmp_path, env, i) for i in range(3)]
    sweeper = subprocess.Popen([DELAYED, "sweeper", "--queue", "periodicq", "--interval", "1"], cwd=tmp_path,
                               env=env, stdout=(tmp_path / "sweeper.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        poll(lambda: client.llen("runs") >= 1, 20, message="the first periodic run")
        started = time.time()
        time.sleep(3)  # windows of 3 ticks before and after the kill: they run while we watch
        killed_at = time.time()
        workers[0].send_signal(signal.SIGKILL)
        assert workers[0].wait(10) == -signal.SIGKILL
        time.sleep(3)
        ended = time.time()
    finally:
        for process in [*workers[1:], sweeper]:
            process.send_signal(signal.SIGTERM)
        for process in [*workers[1:], sweeper]:
            assert process.wait(20) == 0
    runs = [entry.decode().split() for entry in client.lrange("runs", 0, -1)]
    ticks = [float(tick) for tick, _, _ in runs]
    pids = {str(worker.pid): f"worker{i}" for i, worker in enumerate(workers)}
    claimed = {}  # tick -> the worker whose loop won its claim (each loop logs the ticks it enqueued)
    for i in range(3):
        for match in re.finditer(r"enqueued 1 run\(s\) for tick (\d+\.\d+)", (tmp_path / f"worker{i}.log").read_text()):
            assert float(match.group(1)) not in claimed, f"tick {match.group(1)} claimed twice"
            claimed[float(match.group(1))] = f"worker{i}"
    print(f"\nworker0 SIGKILLed at {killed_at:.3f}\ntick        claimed by  ran by    ran after the tick")
    for tick, pid, ran in runs:
        late = float(ran) - float(tick)
        print(f"{float(tick):.0f}  {claimed.get(float(tick), '?'):>10}  {pids.get(pid, pid):>8}  {late:.3f}s")
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    first, last = min(ticks), max(ticks)
    assert ticks == sorted(ticks)
    assert ticks == [first + n for n in range(int(last - first) + 1)], "a tick is missing"
    assert first <= started and last >= ended - 2.0
    ran = [float(at) for _, _, at in runs]
    assert max(b - a for a, b in itertools.pairwise(ran)) <= 2.0  # no gap over one tick plus a second
    assert any(float(at) > killed_at for at in ran), "no run after the SIGKILL"
    assert set(claimed) >= set(ticks)
    record = {k.decode(): v.decode() for k, v in client.hgetall("delayed:periodic:ptasks:beat").items()}
    assert int(record["enqueued"]) == len(runs) + client.llen("periodicq")

    listing = delayed("periodic", "list", "--broker", real_backend.url, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "ptasks:beat: every 1s -> queue periodicq (missed ticks: latest)" in listing.stdout
    assert "ptasks:nightly: cron 0 3 * * * Europe/Berlin -> queue periodicq" in listing.stdout
    assert "outcome:   succeeded" in listing.stdout
    data = json.loads(delayed("periodic", "list", "--json", "--broker", real_backend.url, cwd=tmp_path).stdout)
    beat = next(item for item in data["periodic"] if item["name"] == "ptasks:beat")
    assert beat["outcome"] == "succeeded" and beat["last_run_tick"] is not None
    nightly = next(item for item in data["periodic"] if item["name"] == "ptasks:nightly")
    assert nightly["enqueued"] == 0 and nightly["next_run"] > time.time()


def test_bad_schedule_is_one_line_at_import(real_backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "badtasks.py").write_text(textwrap.dedent("""
        from delayed_core import Delayed
        app = Delayed()
        @app.periodic(cron="*/5 * * *", tz="Europe/Berlin")
        def broken():
            pass
    """))
    result = delayed("worker", "--import", "badtasks", "--broker", real_backend.url, cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad cron expression '*/5 * * *': Wrong number of fields" in lines[0], result.stderr


def test_sweeper_import_schedules_the_modules_periodic_tasks(real_backend: Backend, tmp_path: Path) -> None:
    """``delayed sweeper --import MODULE`` takes part in periodic scheduling with no worker and no
    ``imports`` setting; a module that does not import is one line and exit status 2."""
    (tmp_path / "ptasks.py").write_text(TASKS)
    env = {"DELAYED_BROKER_URL": real_backend.url}
    log = tmp_path / "sweeper.log"
    sweeper = subprocess.Popen([DELAYED, "sweeper", "--queue", "periodicq", "--import", "ptasks"], cwd=tmp_path,
                               env=user_environment(env), stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        poll(lambda: real_backend.client.llen("periodicq") >= 1, 20, message="the sweeper's first periodic run")
    finally:
        sweeper.send_signal(signal.SIGTERM)
        assert sweeper.wait(20) == 0, log.read_text()
    assert "taking part in scheduling 2 periodic task(s)" in log.read_text()
    bad = delayed("sweeper", "--once", "--import", "no_such_tasks", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no_such_tasks" in bad.stderr, bad.stderr
