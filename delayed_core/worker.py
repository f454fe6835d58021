"""Worker: a process serving one queue, or several in strict priority order, with N slots (threads),
each under its own worker id.

Life of a worker:

1. start the executor (before any thread: the fork executor forks its server here);
2. claim one id per slot (``SET id NX`` with a TTL) and start the keep-alive thread, which refreshes
   every id in one round trip (per queue) and promotes due scheduled tasks;
3. log the banner (see startup.py); run the slots until stopped (SIGTERM, SIGINT, SIGHUP or
   :meth:`Worker.stop`), or, in burst mode, until the queues are empty;
4. on stop: running tasks get ``shutdown_timeout`` seconds to finish and be released; tasks still
   running after that are handed back to the front of their queue; then the ids go offline.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import crashpoints, signals
from .backoff import Backoff
from .cancelling import start_cancel_listener
from .child_app import ChildSetup
from .config import Config
from .errors import BrokerUnavailable, ConfigError, WorkerIdTaken
from .interfaces import ExecutorContext
from .maintenance import Maintenance, one_line
from .prefetch import PrefetchSlot, PrefetchState
from .runner import QueueSettings, SlotState, TaskRunner
from .slot import Slot
from .startup import log_banner, queue_configs

if TYPE_CHECKING:
    from .app import Delayed

logger = logging.getLogger("delayed.worker")

MAINTENANCE_TICK = 0.5  # longest single wait of the keep-alive thread (a stop wakes it at once)
#: after a stop, idle slots are woken again this often while they run: a slot may send its blocking take
#: just after a wake (the wake ends only a take already waiting), and then this is how late it stops
WAKE_AGAIN = 0.05
#: how late a stop signal delivered to a thread other than the main one may be seen (see _wait_for_slots)
SIGNAL_CHECK = 0.5


def new_worker_id() -> str:
    """A fresh worker id: 32 lowercase hex chars, like go-delayed's."""
    return secrets.token_hex(16)


class Worker:
    """Serves one queue, or several in strict priority order. Build it with ``app.worker(queue)`` or
    ``app.worker(["high", "default", "low"])``; call :meth:`run`.

    A slot always takes the next task of the highest queue that has one. Each queue's ``[queues.NAME]``
    settings apply to its own tasks (``timeout``, dead letters, retries); the settings of the process
    (``executor``, ``slots`` and the child limits) come from the first queue, and a worker refuses to
    start when another of its queues sets them differently.

    :param app: the app (plugins, functions, components).
    :param queues: the queue to serve, or the queues, highest priority first.
    :param config: the app's configuration (with this worker's overrides), before per-queue tables.
    """

    def __init__(self, app: Delayed, queues: str | Sequence[str], config: Config) -> None:
        configs = queue_configs(config, [queues] if isinstance(queues, str) else queues)
        for queue in configs:
            app.check_components(queue)
        self.app = app
        self.queues = list(configs)
        self.queue_name = self.queues[0]
        self.config = configs[self.queue_name]
        self.brokers = {queue: app.broker(queue) for queue in self.queues}
        self.broker = self.brokers[self.queue_name]
        if len(self.queues) > 1 and not self.broker.serves_several_queues:
            raise ConfigError(f"broker {app.broker_name!r} cannot serve several queues in one worker")
        self.serializer = app.serializer
        self.functions = app.functions
        # Modules given to this worker alone (app.worker(imports=...)) join the app's allowed set.
        for module_name in self.config["imports"]:
            if module_name not in self.functions.modules:
                self.functions.allow_module(module_name)
        self.plugin_manager = app.plugin_manager
        self.notifier = app.notifier
        self.executor = app.registry.get("executor", self.config["executor"])()
        self.stopping = threading.Event()
        self.runner = TaskRunner(
            self.brokers, self.serializer, self.functions, self.executor, self.notifier,
            self.plugin_manager.hook.delayed_retry_delay,
            {queue: QueueSettings.from_config(queue_config) for queue, queue_config in configs.items()},
            self.stopping,
        )
        self.burst = False
        self.slots: list[Slot] = []
        self._stop_requests = 0
        # The keep-alive and cancel threads, each with the call that ends its wait at once.
        self._threads: list[tuple[Callable[[], None], threading.Thread]] = []
        # Set once the slots are done: those threads serve the whole shutdown window, since a running task's
        # id must stay alive until it is released or handed back (or the sweeper would take it away).
        self._threads_ending = threading.Event()
        self._live_slots = 0
        self._live_lock = threading.Lock()

    @property
    def worker_ids(self) -> list[str]:
        """The ids of this worker's slots (each one is a "worker id" to the broker and to go-delayed; a
        prefetching slot has one per task it may hold)."""
        return [worker_id for slot in self.slots for worker_id in slot.ids]

    # -- running ---------------------------------------------------------------------------------
    def run(self, burst: bool = False, install_signals: bool = True) -> None:
        """Serve until stopped (or, with ``burst``, until the queue is empty). Blocks."""
        self.burst = burst
        self.stopping.clear()
        self.notifier.refresh()
        with signals.handling(self._on_signal, install=install_signals):
            self._run()

    def _run(self) -> None:
        self._threads = []
        self._threads_ending.clear()
        self.executor.start(self._executor_context())
        try:
            if not self._go_online():
                return
            self.notifier.delayed_worker_started(worker=self)
            log_banner(self)
            maintenance = Maintenance(list(self.brokers.values()), lambda: self.worker_ids,
                                      self.config["keep_alive_interval"], self.config["keep_alive_timeout"],
                                      self._threads_ending)
            maintenance.listen()
            keep_alive = threading.Thread(target=maintenance.run, name="delayed-keep-alive", daemon=True)
            keep_alive.start()
            self._threads = [(maintenance.wake, keep_alive)]
            cancels = start_cancel_listener(self, self._threads_ending)
            if cancels is not None:
                self._threads.append((cancels[0].wake, cancels[1]))
            self._live_slots = len(self.slots)
            if not self.slots:
                self.stopping.set()
            for slot in self.slots:
                slot.on_end = self._slot_ended
                slot.start()
            self._wait_for_slots()
        finally:
            self.stopping.set()
            self._shutdown()

    def stop(self) -> None:
        """Ask the worker to stop gracefully (safe from any thread; a signal handler of your own should
        call it from a new thread, as the worker's own handler does, for the reason given there)."""
        # Only the event: the main thread, woken by it, wakes every other wait (from a signal handler,
        # which interrupts the main thread, taking a connection pool's lock could deadlock).
        self.stopping.set()

    def _slot_ended(self) -> None:
        """Called by each slot's thread as it ends: once none is left (burst mode found the queues empty,
        or the slots stopped), the worker stops."""
        with self._live_lock:
            self._live_slots -= 1
            last = self._live_slots <= 0
        if last:
            self.stopping.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_requests += 1
        if self._stop_requests == 1:
            logger.info("got %s: finishing running tasks (up to %gs), then stopping",
                        signal.Signals(signum).name, self.config["shutdown_timeout"])
        else:
            logger.warning("got %s again: handing running tasks back and stopping now",
                           signal.Signals(signum).name)
        # Not self.stop() here: the handler runs in the main thread between two of its bytecodes, and if
        # those were inside the event's own wait() or set() (holding its lock), setting it here would wait
        # for that lock forever. A short-lived thread takes the lock once the main thread lets it go; it is
        # started with _thread, because threading.Thread.start() takes threading's own registry lock,
        # which the interrupted main thread may hold as well.
        _thread.start_new_thread(self.stop, ())

    def _executor_context(self) -> ExecutorContext:
        config = self.config
        return ExecutorContext(
            slots=config["slots"],
            config=config,
            resolve=self.functions.resolve,
            child_started=lambda executor, slot: self.plugin_manager.hook.delayed_executor_child_started(
                executor=executor, slot=slot),
            child_setup=ChildSetup.of(config, self.functions),
        )

    def _go_online(self) -> bool:
        """Claim one id per slot (``prefetch`` per slot), waiting (with capped backoff) while the broker is
        unavailable."""
        backoff = Backoff()
        ttl = self.config["keep_alive_timeout"]
        per_slot = self.config["prefetch"]
        ids: list[str] = []
        while len(ids) < self.config["slots"] * per_slot:
            if self.stopping.is_set():
                return False
            try:
                slot_id = self._claim_one(ttl)
            except BrokerUnavailable as exc:
                # Unreachable, or reachable but refusing for now (read-only, busy, out of memory): wait,
                # it may pass (at maxmemory, other workers draining the queue free memory).
                what = "cannot reach" if type(exc) is BrokerUnavailable else "cannot go online on"
                backoff.wait(self.stopping, logger.error, "%s the broker at %s (%s); retrying in %.1fs", what,
                             self.config.redacted_broker_url, exc)
                continue
            ids.append(slot_id)
        if per_slot == 1:
            self.slots = [Slot(self.runner, SlotState(index, slot_id), self.stopping,
                               self.config["dequeue_timeout"], self.burst) for index, slot_id in enumerate(ids)]
        else:
            self.slots = [PrefetchSlot(self.runner, PrefetchState(index, ids[index * per_slot:(index + 1) * per_slot]),
                                       self.stopping, self.config["dequeue_timeout"], self.burst)
                          for index in range(self.config["slots"])]
        return True

    def _claim_one(self, ttl: float) -> str:
        for _ in range(100):
            worker_id = new_worker_id()
            if self.broker.claim_worker_id(worker_id, ttl):
                # The liveness key is shared; the other queues only need the id in their registry.
                for broker in list(self.brokers.values())[1:]:
                    broker.keep_alive([worker_id], ttl)
                return worker_id
        raise WorkerIdTaken("could not claim a free worker id in 100 tries")

    def _wait_for_slots(self) -> None:
        """Sleep until stopped (a stop request, or the last slot ending by itself); then wake the idle
        slots and give running tasks ``shutdown_timeout`` to finish."""
        # stop() wakes this wait at once. The timeout is for a stop signal the OS delivers to another
        # thread: Python runs its handler in this thread only, once this thread runs again.
        while not self.stopping.wait(SIGNAL_CHECK):
            pass
        deadline = time.monotonic() + self.config["shutdown_timeout"]
        next_wake = 0.0
        for slot in self.slots:
            while slot.is_alive() and self._stop_requests < 2:
                now = time.monotonic()
                if now >= deadline:
                    break
                if now >= next_wake:
                    # Idle slots block up to dequeue_timeout: unblock them so the stop is prompt.
                    self._wake_idle_slots()
                    next_wake = now + WAKE_AGAIN
                slot.join(min(WAKE_AGAIN, deadline - now))  # returns as the slot ends
        for slot in self.slots:
            if slot.is_alive():
                self._hand_back(slot)

    def _end_threads(self) -> None:
        """End the keep-alive and cancel threads, their waits woken at once."""
        self._threads_ending.set()
        for wake, _ in self._threads:
            try:
                wake()
            except Exception as exc:  # a plugin's watcher: its thread then ends when its wait times out
                logger.error("could not wake a worker thread (%s); it stops at the end of its wait", one_line(exc))

    def _wake_idle_slots(self) -> None:
        # If the broker is unreachable the slots notice the stop at their next dequeue timeout anyway.
        with contextlib.suppress(BrokerUnavailable):
            self.broker.wake(slot.slot_id for slot in self.slots
                             if slot.is_alive() and slot.state.running is None)

    def _hand_back(self, slot: Slot) -> None:
        """Put a task that did not finish in time back at the front of its own queue."""
        state = slot.state
        with state.lock:
            if state.running is None:
                return
            queue, raw = state.running
            state.abandoned = True
        slot.hand_back_unstarted()  # before the running task, which so goes back first in line
        self.executor.interrupt(slot.index)
        crashpoints.reached("before_hand_back")
        try:
            self.brokers[queue].requeue(slot.slot_id, raw, front=True)
            logger.warning("slot %d: task still running at shutdown was handed back to the queue", slot.index)
        except BrokerUnavailable as exc:
            logger.error("slot %d: could not hand its task back (%s); the sweeper will recover it",
                         slot.index, exc)

    def _shutdown(self) -> None:
        ids = self.worker_ids
        self._end_threads()
        for _, thread in self._threads:
            thread.join(MAINTENANCE_TICK + 1)
        self.executor.stop()
        if ids:
            # A slot still busy (its task neither finished nor handed back) keeps its id alive until the TTL
            # runs out, so the sweeper recovers that task only once this process is really gone.
            still_busy = {worker_id for slot in self.slots if slot.is_alive() and not slot.state.abandoned
                          for worker_id in slot.ids}
            try:
                for broker in self.brokers.values():
                    broker.go_offline([worker_id for worker_id in ids if worker_id not in still_busy])
            except BrokerUnavailable as exc:
                logger.error("could not go offline (%s); the ids expire by themselves", exc)
            self.notifier.delayed_worker_stopped(worker=self)
            logger.info("worker stopped after %d task(s)", sum(slot.tasks_done for slot in self.slots))

