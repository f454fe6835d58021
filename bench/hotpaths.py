"""Profile pydelayed's hot paths with cProfile: ``.venv/bin/python bench/hotpaths.py [--n 20000] [--top 25]``.

Profiles (1) ``queue.enqueue(PyTask(...))`` in a loop and (2) one worker slot draining a pre-filled queue
with the thread executor (in-process, burst mode), against a private redis-server pinned like
``run.py``'s, and prints the top functions by own time plus the Redis commands sent per task.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.peers import base


def top(profile: cProfile.Profile, count: int) -> str:
    """The ``count`` most expensive functions by own time."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(count)
    return out.getvalue()


def calls_per_task(profile: cProfile.Profile, n: int) -> str:
    """Function calls (Python and built-in) per task: the deterministic figure to compare two trees by,
    whatever the load of the machine."""
    stats = pstats.Stats(profile)
    total = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    return f"{total / n:.1f} function calls per task"


def profile_enqueue(n: int, count: int) -> None:
    """cProfile of ``n`` single enqueue calls."""
    from bench.peers.pydelayed_peer import PydelayedPeer

    peer = PydelayedPeer()
    peer.enqueue(100)  # connect and load the script outside the profile
    before = harness.command_calls(peer.client)
    profile = cProfile.Profile()
    profile.runcall(peer.enqueue, n)
    print(f"== enqueue x{n}: {calls_per_task(profile, n)}, commands per call {peer._per_task(before, n)}")
    print(top(profile, count))


def profile_worker(n: int, count: int) -> None:
    """cProfile of one slot thread draining ``n`` no-op tasks (thread executor, burst mode)."""
    from bench.peers.pydelayed_peer import QUEUE, PydelayedPeer, make_app
    from delayed_core.slot import Slot

    peer = PydelayedPeer()
    peer.fill(n)
    profile = cProfile.Profile()
    original = Slot.serve

    def profiled_serve(slot: Slot) -> None:
        profile.runcall(original, slot)

    Slot.serve = profiled_serve  # type: ignore[method-assign]  # only in this throw-away process
    before = harness.command_calls(peer.client)
    make_app(executor="thread", slots=1).worker(QUEUE).run(burst=True, install_signals=False)
    print(f"== worker slot, {n} no-op tasks: {calls_per_task(profile, n)}, commands per task "
          f"{peer._per_task(before, n)}")
    print(top(profile, count))


def main() -> None:
    """Start a pinned server, pin this process to the client CPU, profile both paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--top", type=int, default=25)
    options = parser.parse_args()
    server = harness.PinnedRedisServer().start()
    try:
        os.environ[base.URL_VARIABLE] = server.url
        if (os.cpu_count() or 1) > harness.CLIENT_CPU:
            os.sched_setaffinity(0, {harness.CLIENT_CPU})
        profile_enqueue(min(options.n, 5000), options.top)
        server.client().flushall()
        profile_worker(options.n, options.top)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
