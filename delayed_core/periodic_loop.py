"""The loop by which one process takes part in scheduling periodic tasks (see :mod:`.periodic`).

It wakes at the next tick of any schedule (at least once a second, to notice a stop), and for each
schedule whose tick has come it makes one claim in the broker. Whoever wins enqueues; the others learn
the new last tick from the reply. A failing broker costs one log line and a retry with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .backoff import Backoff
from .errors import ConfigError
from .interfaces import PeriodicStore
from .periodic import GRACE, PeriodicSpec
from .task import PyTask

if TYPE_CHECKING:
    from .app import Delayed

logger = logging.getLogger("delayed.periodic")

#: longest sleep, so that a stop is noticed
LONGEST_WAIT = 1.0


def tick_text(t: float) -> str:
    """A tick as the broker records it: unix seconds with milliseconds."""
    return f"{t:.3f}"


class _Entry:
    """One schedule as this process follows it."""

    def __init__(self, name: str, spec: PeriodicSpec) -> None:
        self.name = name
        self.spec = spec
        self.cursor: str | None = None  # the last tick the broker holds, as this process last saw it
        self.next_step = 0.0  # unix time of this schedule's next step here
        self.backoff = Backoff(cap=30.0)


class PeriodicLoop:
    """Claims the ticks of every periodic function ``app`` knows (a thread per process).

    :param clock: the unix time now (tests pass a fake one and call :meth:`step`).
    """

    def __init__(self, app: Delayed, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock
        self.entries = [_Entry(name, spec) for name, spec in app.functions.periodic().items()]
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeriodicLoop:
        """Run in a daemon thread (nothing to do without periodic functions)."""
        if self.entries and self._thread is None:
            names = ", ".join(f"{e.name} ({e.spec.schedule.describe()})" for e in self.entries)
            logger.info("taking part in scheduling %d periodic task(s): %s", len(self.entries), names)
            self._thread = threading.Thread(target=self.run, name="delayed-periodic", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (a claim in flight finishes: it is atomic anyway)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """The same as :meth:`stop` (for ``contextlib.closing``)."""
        self.stop()

    def run(self) -> None:
        """Step until stopped; never raises."""
        while not self.stopping.is_set():
            self.stopping.wait(self.step())

    def step(self) -> float:
        """Claim every tick that has come; return the seconds to wait before the next step."""
        now = self.clock()
        for entry in self.entries:
            if now >= entry.next_step:
                try:
                    self._step(entry, now)
                    entry.backoff.reset()
                except Exception as exc:  # one line; the claim is atomic, so retrying is safe
                    delay = entry.backoff.next_delay()
                    entry.next_step = now + delay
                    logger.error("periodic %s: claiming its tick failed (%s); retrying in %.1fs", entry.name,
                                 " ".join(str(exc).split()) or type(exc).__name__, delay)
        wake = min(entry.next_step for entry in self.entries) - self.clock() if self.entries else LONGEST_WAIT
        return min(LONGEST_WAIT, max(0.0, wake))

    def _store(self, entry: _Entry) -> PeriodicStore:
        broker = self.app.broker(entry.spec.queue)
        if not isinstance(broker, PeriodicStore):
            raise ConfigError(f"the {type(broker).__name__} broker cannot schedule periodic tasks "
                              "(it lacks the PeriodicStore role)")
        return broker

    def _step(self, entry: _Entry, now: float) -> None:
        spec, store = entry.spec, self._store(entry)
        if entry.cursor is None:
            # next_run as seen from now; a claim of missed ticks right after this rewrites it
            facts = {"schedule": spec.schedule.describe(), "queue": spec.queue, "missed": spec.missed,
                     "next_run": tick_text(spec.schedule.next_after(now))}
            entry.cursor = store.periodic_start(entry.name, tick_text(now), facts)
        cursor = float(entry.cursor)
        due, run = self._due(spec, cursor, now)
        if not due:
            entry.next_step = spec.schedule.next_after(max(cursor, now))
            return
        last = due[-1]
        dumps = self.app.serializer.dumps
        tasks = [dumps(PyTask(entry.name, spec.args, dict(spec.kwargs), meta={"periodic": entry.name, "tick": t}))
                 for t in run]
        facts = {"schedule": spec.schedule.describe(), "queue": spec.queue, "missed": spec.missed,
                 "next_run": tick_text(spec.schedule.next_after(last))}
        if run:
            facts.update(last_enqueued_tick=tick_text(run[-1]), last_enqueued_at=tick_text(now))
        claimed, stored = store.periodic_claim(entry.name, entry.cursor, tick_text(last), tasks, facts)
        if claimed:
            skipped = len(due) - len(run)
            logger.info("periodic %s: enqueued %d run(s) for tick %s%s", entry.name, len(run), tick_text(last),
                        f" ({skipped} missed tick(s) not run, missed={spec.missed!r})" if skipped else "")
            entry.cursor, entry.next_step = stored, spec.schedule.next_after(last)
        else:
            # Another process was faster (or the record was deleted: start it again). Look again at once.
            entry.cursor, entry.next_step = stored or None, now

    @staticmethod
    def _due(spec: PeriodicSpec, cursor: float, now: float) -> tuple[list[float], list[float]]:
        """(the ticks after ``cursor`` up to ``now`` that this claim covers, those of them to run)."""
        if spec.missed == "all":
            due = spec.schedule.ticks(cursor, now)
            return due, due
        latest = spec.schedule.latest(now)
        if latest is None or latest <= cursor:
            return [], []
        if spec.missed == "skip" and now - latest > GRACE:
            return [latest], []
        return [latest], [latest]
