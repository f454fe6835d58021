"""The small shared helpers: Backoff.wait and the stop-signal installer."""

from __future__ import annotations

import signal
import threading
import time

from delayed_core import signals
from delayed_core.backoff import Backoff


def test_backoff_wait_logs_the_delay_then_sleeps_it() -> None:
    said: list[tuple[object, ...]] = []
    backoff = Backoff(initial=0.05, cap=0.1)
    started = time.monotonic()
    stopped = backoff.wait(threading.Event(), lambda *args: said.append(args), "down (%s); retry in %.1fs", "x")
    assert not stopped and time.monotonic() - started >= 0.05
    assert len(said) == 1 and said[0][:2] == ("down (%s); retry in %.1fs", "x")
    assert 0.05 <= float(said[0][2]) <= 0.055  # the delay, with at most 10% jitter, comes last
    assert 0.1 <= backoff.next_delay() <= 0.11  # the next one doubled


def test_backoff_wait_returns_at_once_when_stopped() -> None:
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    assert Backoff(initial=5.0).wait(stop) is True
    assert time.monotonic() - started < 4.0  # did not sit out the 5 s pause


def test_handlers_are_installed_for_the_block_and_restored_after() -> None:
    def handler(_signum: int, _frame: object) -> None:
        pass

    before = signal.getsignal(signal.SIGTERM)
    with signals.handling(handler, (signal.SIGTERM,)):
        assert signal.getsignal(signal.SIGTERM) is handler
    assert signal.getsignal(signal.SIGTERM) is before


def test_nothing_is_installed_outside_the_main_thread_or_when_asked_not_to() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def in_thread() -> None:
        with signals.handling(lambda *_: None, (signal.SIGTERM,)):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    with signals.handling(lambda *_: None, (signal.SIGTERM,), install=False):
        seen.append(signal.getsignal(signal.SIGTERM))
    assert seen == [before, before]


def test_a_worker_whose_executor_fails_to_start_leaves_the_handlers_as_it_found_them() -> None:
    """Regression: the handlers were installed before the executor started, outside the try that
    restored them, so an executor failing at start left the worker's handlers in the program."""
    from delayed_core import Delayed, hookimpl
    from delayed_core.interfaces import Executor

    class Broken(Executor):
        name = "broken"

        def start(self, context: object) -> None:
            raise RuntimeError("no pool today")

        def execute(self, *args: object) -> object:
            raise AssertionError("never called")

    class Plugin:
        @hookimpl
        def delayed_register_components(self, registry: object) -> None:
            registry.add_executor("broken", Broken)  # type: ignore[attr-defined]

    before = {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS}
    app = Delayed("memory://signals", plugins=[Plugin()], executor="broken", load_entry_points=False)
    worker = app.worker("default")
    try:
        worker.run(burst=True)
    except RuntimeError as exc:
        assert str(exc) == "no pool today"
    else:
        raise AssertionError("the executor's start error must propagate")
    assert {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS} == before
