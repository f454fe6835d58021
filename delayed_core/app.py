"""Delayed: the application object. It owns the configuration, the plugins and the component registry,
and makes queues, workers and sweepers. There is no global state: two apps in one process are
independent.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload
from urllib.parse import urlsplit

import pluggy

from .config import CORE_SETTINGS, Config, load_config
from .errors import ConfigError, DelayedError
from .functions import FunctionRegistry, TaskOptions
from .interfaces import Broker, Serializer
from .notify import Notifier
from .plugins import make_plugin_manager
from .redact import redact_url
from .registry import ComponentRegistry

# The producer side (queues, task functions, schedules, handles) is imported by the methods that make
# them: an admin command (``delayed info``) builds an app only to reach its brokers.
if TYPE_CHECKING:
    from .async_queue import AsyncQueue
    from .queue import Queue
    from .task_function import TaskFunction

logger = logging.getLogger("delayed")
P = ParamSpec("P")
R = TypeVar("R")

#: the scheme of the default broker URL (the default plugin's), for the hint on a URL without one
DEFAULT_SCHEME = urlsplit(next(str(s.default) for s in CORE_SETTINGS if s.name == "broker_url")).scheme


class Delayed:
    """A pydelayed application.

    ``Delayed(broker_url=URL, slots=4)``: keyword arguments are settings (see
    ``delayed config``) and win over ``DELAYED_*`` environment variables and the config file.

    :param broker_url: where the broker is.
    :param plugins: extra plugin objects or module names.
    :param config: a ready :class:`Config` (the CLI passes one); settings are then ignored.
    :param load_entry_points: load third-party plugins from the ``delayed`` entry-point group.
    """

    def __init__(
        self,
        broker_url: str | None = None,
        *,
        plugins: Iterable[object | str] = (),
        config: Config | None = None,
        load_entry_points: bool = True,
        **settings: Any,
    ) -> None:
        if config is None:
            config = load_config({"broker_url": broker_url, **settings}, plugins=plugins,
                                 load_entry_points=load_entry_points)
        self.config = config
        wanted = [*self.config["plugins"], *plugins]
        # The manager that resolved the config, when it was built from the same plugins: one build (and
        # one entry-point scan) per app rather than two.
        handoff = self.config.plugins_handoff
        self.plugin_manager: pluggy.PluginManager = (
            make_plugin_manager(wanted, load_entry_points) if handoff is None
            else handoff.take(wanted, load_entry_points)
        )
        self.registry = ComponentRegistry()
        self.plugin_manager.hook.delayed_register_components(registry=self.registry)
        self.notifier = Notifier(self.plugin_manager)
        self.functions = FunctionRegistry(allow_any_import=self.config["allow_any_import"])
        for module_name in self.config["imports"]:
            self.functions.allow_module(module_name)
        self._lock = threading.Lock()
        # Connections shared by this app's brokers; the config too, for broker-level settings.
        self._shared: dict[str, object] = {"config": self.config}
        self._brokers: dict[str, Broker] = {}
        # event loop -> queue name -> AsyncQueue (see _loop_queue); dropped with the loop
        self._loop_queues: weakref.WeakKeyDictionary[Any, dict[str, AsyncQueue]] = weakref.WeakKeyDictionary()
        self._serializer: Serializer | None = None
        self.check_components()
        self.plugin_manager.hook.delayed_app_created(app=self)

    # -- components ------------------------------------------------------------------------------
    @property
    def broker_name(self) -> str:
        """The broker component in use: the ``broker`` setting, else the one registered for the URL's
        scheme."""
        if self.config["broker"]:
            return self.config["broker"]
        url = self.config.broker_url
        scheme = urlsplit(url).scheme if "://" in url else ""
        name = self.registry.broker_for_scheme(scheme)
        if name is not None:
            return name
        schemes = ", ".join(f"{s}://" for s in self.registry.schemes())
        if scheme:
            raise ConfigError(f"unknown broker {scheme!r} for URL {redact_url(url)!r}: no plugin registers "
                              f"the {scheme}:// scheme; use one of {schemes}")
        # "localhost:6379" parses as scheme "localhost": the likeliest mistake is a missing scheme.
        hint = f"; did you mean {redact_url(f'{DEFAULT_SCHEME}://{url}')}?" if ":/" not in url else ""
        raise ConfigError(f"unsupported broker URL {redact_url(url)!r}: use one of {schemes}{hint}")

    def require_shared_broker(self) -> None:
        """Refuse a broker whose data lives in this process (``memory://``): a command that runs in its
        own process (``delayed worker``, ``info`` ...) would only ever see an empty queue."""
        if self.registry.get("broker", self.broker_name).process_local:
            raise ConfigError(
                f"the {self.broker_name} broker ({redact_url(self.config.broker_url)}) lives inside one "
                f"Python process, so this command cannot share it; use a {DEFAULT_SCHEME}:// URL "
                "(memory:// is for tests and 'delayed demo')"
            )

    def check_components(self, queue: str | None = None) -> None:
        """Fail now, with the valid names, if a configured component name is unknown."""
        config = self.config if queue is None else self.config.for_queue(queue)
        self.registry.check("broker", self.broker_name)
        self.registry.check("serializer", config["serializer"])
        self.registry.check("executor", config["executor"])

    @property
    def serializer(self) -> Serializer:
        """The configured serializer (one instance per app)."""
        if self._serializer is None:
            self._serializer = self.registry.get("serializer", self.config["serializer"])()
        return self._serializer

    def broker(self, queue: str) -> Broker:
        """The broker for ``queue`` (cached; brokers of one app share connections)."""
        with self._lock:
            broker = self._brokers.get(queue)
            if broker is None:
                cls = self.registry.get("broker", self.broker_name)
                broker = self._brokers[queue] = cls.from_url(self.config.broker_url, queue, self._shared)
            return broker

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object after start-up (tests, notebooks)."""
        self.plugin_manager.register(plugin, name=name)
        self.plugin_manager.check_pending()
        self.notifier.refresh()

    # -- producers -------------------------------------------------------------------------------
    def queue(self, name: str | None = None, *, max_length: int | None = None) -> Queue:
        """A handle for enqueueing on queue ``name`` (default: the ``queue`` setting).

        :param max_length: bound the tasks waiting in the queue (default: the queue's ``max_length``
            setting; 0 = unbounded); enqueueing past it raises QueueFull.
        """
        from .queue import Queue

        name = name or self.config["queue"]
        if max_length is None:
            max_length = self.config.for_queue(name)["max_length"]
        return Queue(name, self.broker(name), self.serializer, self.notifier, max_length)

    def async_queue(self, name: str | None = None) -> AsyncQueue:
        """An asyncio handle for enqueueing on queue ``name``; close it with ``await q.close()``."""
        name = name or self.config["queue"]
        broker_cls = self.registry.get("broker", self.broker_name)
        if broker_cls.async_broker is None:
            raise ConfigError(f"broker {self.broker_name!r} has no asyncio support")
        async_broker = broker_cls.async_broker.from_url(self.config.broker_url, name, {"config": self.config})
        from .async_queue import AsyncQueue
        from .results import tracker_for

        return AsyncQueue(name, async_broker, self.serializer, self.notifier, tracker_for(self.broker(name)))

    @overload
    def task(self, func: Callable[P, R]) -> TaskFunction[P, R]: ...

    @overload
    def task(
        self, *, queue: str | None = None, retry: int = 0, timeout: float | None = None,
        name: str | None = None, result_ttl: int | None = None, unique_for: float = 0,
        rate_limit: str | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...

    def task(
        self,
        func: Callable[P, R] | None = None,
        *,
        queue: str | None = None,
        retry: int = 0,
        timeout: float | None = None,
        name: str | None = None,
        result_ttl: int | None = None,
        unique_for: float = 0,
        rate_limit: str | None = None,
    ) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Decorator registering a task function: ``f(...)`` calls it, ``f.delay(...)`` enqueues it.

        Both forms keep the function's signature for type checkers: ``@app.task`` and
        ``@app.task(retry=3)``. A function defined in a script run as ``python tasks.py`` is registered
        under its importable name (``tasks:f``), so a worker started with ``--import tasks`` runs it.

        :param queue: queue used by ``delay`` (default: the ``queue`` setting).
        :param retry: retries after a failure; negative retries forever.
        :param timeout: seconds a run may take, overriding the worker's default.
        :param name: the path workers know it by (default ``"module:qualname"``).
        :param result_ttl: seconds its finished records stay (default: the ``result_ttl`` setting); 0: not
            tracked, ``delay`` returns None and writes delayed 1.2's exact bytes.
        :param unique_for: seconds within which ``delay`` with equal arguments returns the existing task.
        :param rate_limit: ``"100/m"`` (also ``/s``, ``/h``): starts allowed, evenly spaced, shared by
            every worker (see docs/periodic.md); a task that comes early is scheduled for its turn.
        """
        from .rate_limit import parse_rate_limit
        from .task_function import TaskFunction

        options = TaskOptions(timeout=timeout, rate_limit=parse_rate_limit(rate_limit))

        def decorate(function: Callable[P, R]) -> TaskFunction[P, R]:
            path = self.functions.register(function, name, options)
            return TaskFunction(self, function, path, queue or self.config["queue"], retry, result_ttl, unique_for)

        return decorate(func) if func is not None else decorate

    def handle(self, task_id: str, queue: str | None = None) -> Any:
        """The :class:`~delayed_core.handles.TaskHandle` of a tracked task, by id (an unknown id gives
        status ``unknown``).

        :param queue: the task's queue, where a broker keeps records per queue (the Redis cluster layout)
            and the id is the caller's own (``task_id=...``): an id pydelayed made names its queue, and
            on one Redis any queue finds any record. Default: the queue the id names, else the ``queue``
            setting.
        """
        from .handles import RESULT_TTL, TaskHandle
        from .results import tracker_for

        tracker = tracker_for(self.broker(queue or self.config["queue"]))
        if tracker is None:
            raise DelayedError(f"the {self.broker_name} broker keeps no task records")
        named = tracker.queue_named(task_id) if queue is None else None
        if named is not None:
            tracker = tracker_for(self.broker(named))
            assert tracker is not None  # brokers of one app are of one class
        return TaskHandle(tracker, self.serializer, task_id, self.config.get(RESULT_TTL))

    def periodic(
        self, *, cron: str | None = None, every: float | None = None, tz: str | None = None,
        args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, missed: str | None = None,
        catch_up: bool = False, queue: str | None = None, name: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Decorator making a task function run on a schedule, enqueued by the workers and sweepers that
        know it (no scheduler process, no leader; each tick enqueued exactly once). See docs/periodic.md.

        :param cron: a cron expression (``"*/5 * * * *"``; six fields put seconds first), or
        :param every: seconds between runs (ticks at the multiples of it since the epoch).
        :param tz: the time zone of ``cron`` (IANA name, default UTC).
        :param args: positional arguments of every run; ``kwargs`` its keyword arguments.
        :param missed: ticks missed while every process was down: ``"latest"`` (default) runs the
            latest once, ``"all"`` runs each, ``"skip"`` runs none; ``catch_up=True`` means ``"all"``.
        :param queue: the queue its runs go to (default: the ``queue`` setting).

        Bad expressions, unknown zones and ``every <= 0`` raise ConfigError here, at decoration.
        """
        from .periodic import make_spec
        from .task_function import TaskFunction

        target = queue or self.config["queue"]
        spec = make_spec(cron=cron, every=every, tz=tz, queue=target, missed=missed, catch_up=catch_up,
                         args=args, kwargs=kwargs)
        options = TaskOptions(timeout=timeout, periodic=spec)

        def decorate(function: Callable[P, R]) -> TaskFunction[P, R]:
            path = self.functions.register(function, name, options)
            return TaskFunction(self, function, path, target, 0)

        return decorate

    # -- processes -------------------------------------------------------------------------------
    def worker(self, queue: str | Sequence[str] | None = None, **overrides: Any) -> Any:
        """A :class:`~delayed_core.worker.Worker` for ``queue`` (default: the ``queue`` setting), or for
        several queues served in strict priority order, highest first (``["high", "default", "low"]``);
        ``overrides`` are settings for it alone."""
        from .worker import Worker

        queues = [queue] if isinstance(queue, str) else list(queue or [self.config["queue"]])
        return Worker(self, queues, self._config_for(None, overrides))

    def sweeper(self, queues: Sequence[str] | None = None, **overrides: Any) -> Any:
        """A :class:`~delayed_core.sweeper.SweepLoop` over ``queues`` (default: the ``queue`` setting)."""
        from .sweeper import SweepLoop

        return SweepLoop(self, list(queues or [self.config["queue"]]), self._config_for(None, overrides))

    def _config_for(self, queue: str | None, overrides: dict[str, Any]) -> Config:
        config = self.config
        if overrides:
            merged = {key: config[key] for key in config.explicit}
            merged.update(overrides)
            config = load_config(merged, settings=config.settings)
        return config.for_queue(queue) if queue else config

    def _loop_queue(self, name: str) -> AsyncQueue:
        """The running event loop's :class:`AsyncQueue` for ``name``, made on its first use there and
        kept as long as the loop lives (``fn.delay_async()`` writes through it: asyncio connections
        belong to one loop, and a queue per call would connect per call)."""
        import asyncio  # only asyncio callers get here: the CLI and workers never import it for this

        loop = asyncio.get_running_loop()
        with self._lock:  # loops of other threads may ask at the same time
            queues = self._loop_queues.setdefault(loop, {})
            queue = queues.get(name)
        if queue is None:  # only this loop's thread fills its dict: no other can race for this name
            queue = queues[name] = self.async_queue(name)
        return queue

    def close(self) -> None:
        """Close broker connections."""
        with self._lock:
            for broker in self._brokers.values():
                broker.close()
            self._brokers.clear()

    def __repr__(self) -> str:
        return f"<Delayed broker={self.config.redacted_broker_url!r}>"
