"""The metrics plugin: Prometheus counters, a duration histogram and queue gauges, served over HTTP.

Install the extra (``pip install pydelayed[metrics]``), then either load it by module name
(``plugins = ["delayed_plugins.metrics"]`` and ``metrics_port = 9100``) or pass an object
(``Delayed(..., plugins=[Metrics(port=9100)])``).

It is built only on the public hooks, so it doubles as an example. Every lifecycle hook runs in the
worker process, even with the fork and subprocess executors, so counts are exact whatever the executor
and however many slots. The HTTP endpoint starts when a worker starts (or after the first sweep in a
sweeper process), never in producers, so a web app that enqueues tasks does not open a port; it can
still expose ``Metrics.registry`` itself (``prometheus_client.generate_latest(metrics.registry)``).

With ``delayed worker --processes N`` the counters are aggregated across the worker processes with
prometheus-client's multiprocess mode: the supervising parent gives every child one
``PROMETHEUS_MULTIPROC_DIR``, the children write their counters there and do not listen, and the parent
serves the sum on ``metrics_port`` (:meth:`Metrics.serve_aggregated`).

Gauges (queue length, held tasks, live workers, scheduled tasks, dead letters) are read from
``broker.info()`` at scrape time, for the queues this process serves or sweeps: they are always fresh
and cost nothing between scrapes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from delayed_core import hookimpl
from delayed_core.deadletter import Reason
from delayed_core.errors import DelayedError
from delayed_core.settings import Setting, SettingsRegistry, not_negative

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - exercised only without the extra
    # An ImportError: the plugin loader turns it into one configuration-error line naming the plugin.
    raise ImportError("the metrics plugin needs prometheus-client: install pydelayed[metrics]") from None

if TYPE_CHECKING:
    from delayed_core.app import Delayed
    from delayed_core.deadletter import DeadLetter
    from delayed_core.interfaces import Broker, SweepReport
    from delayed_core.outcome import Outcome
    from delayed_core.task import PyTask, Task
    from delayed_core.worker import Worker

logger = logging.getLogger("delayed.metrics")

METRICS_PORT: Setting[int] = Setting("metrics_port", int, 0, "port of the Prometheus endpoint; 0 = off",
                                     not_negative)

#: set by the supervisor in its worker processes: the parent serves the aggregated metrics, not them
SUPERVISED_ENV = "DELAYED_SUPERVISED"

#: task duration buckets, seconds: from quick jobs to long batch tasks
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))


def function_of(task: Task) -> str:
    """The function label of a task (its path; Go tasks included)."""
    return task.func_path


class QueueGauges(Collector):
    """Reads queue gauges from the brokers at scrape time."""

    def __init__(self, owner: Metrics) -> None:
        self.owner = owner

    def describe(self) -> list[Any]:
        # Returning nothing keeps registration from calling collect() (and Redis) at start-up.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "length": GaugeMetricFamily("delayed_queue_length", "tasks waiting in the queue", labels=["queue"]),
            "processing": GaugeMetricFamily("delayed_tasks_processing", "tasks held by workers",
                                            labels=["queue"]),
            "workers": GaugeMetricFamily("delayed_workers_live", "live worker slots", labels=["queue"]),
            "scheduled": GaugeMetricFamily("delayed_tasks_scheduled", "tasks waiting for their due time",
                                           labels=["queue"]),
            "dead": GaugeMetricFamily("delayed_dead_letters", "dead letters kept", labels=["queue"]),
        }
        for queue, broker in self.owner.brokers():
            try:
                info = broker.info()
            except DelayedError as exc:
                # A scrape must answer even when Redis is away; the gauges are then absent, not stale.
                logger.warning("metrics: cannot read queue %s: %s", queue, exc)
                continue
            families["length"].add_metric([queue], info.length)
            families["processing"].add_metric([queue], len(info.processing))
            families["workers"].add_metric([queue], len(info.workers))
            families["scheduled"].add_metric([queue], info.scheduled)
            families["dead"].add_metric([queue], info.dead)
        yield from families.values()


class Metrics:
    """Counts task events and serves them, with queue gauges, on a Prometheus endpoint.

    :param port: HTTP port; None reads the ``metrics_port`` setting of the worker's config; 0 = no server.
    :param addr: address to listen on.
    :param registry: where metrics live (default: a registry of this object's own, so two apps in one
        process never share counters).
    """

    def __init__(self, port: int | None = None, addr: str = "0.0.0.0",
                 registry: CollectorRegistry | None = None) -> None:
        self.port = port
        self.addr = addr
        self.registry = registry if registry is not None else CollectorRegistry()
        self.app: Delayed | None = None
        self._lock = threading.Lock()
        # queue -> (its broker, how many workers or sweepers of this process use it)
        self._queues: dict[str, tuple[Broker, int]] = {}
        self._server: Any = None
        self.bound_port = 0
        labels = ["queue", "function"]
        r = self.registry
        self.enqueued = Counter("delayed_tasks_enqueued", "tasks enqueued by this process", labels, registry=r)
        self.started = Counter("delayed_tasks_started", "task runs started", labels, registry=r)
        self.succeeded = Counter("delayed_tasks_succeeded", "task runs that returned", labels, registry=r)
        self.failed = Counter("delayed_tasks_failed", "task runs that failed (raised, timed out, crashed)",
                              [*labels, "status"], registry=r)
        self.retried = Counter("delayed_tasks_retried", "failed tasks put back for a retry", labels, registry=r)
        self.dead_lettered = Counter("delayed_tasks_dead_lettered", "tasks moved to the dead-letter list",
                                     ["queue", "reason"], registry=r)
        self.recovered = Counter("delayed_tasks_recovered", "tasks of dead workers requeued by a sweeper",
                                 ["queue"], registry=r)
        self.duration = Histogram("delayed_task_duration_seconds", "task run time", labels,
                                  buckets=DURATION_BUCKETS, registry=r)
        r.register(QueueGauges(self))

    # -- wiring ----------------------------------------------------------------------------------
    @hookimpl
    def delayed_add_settings(self, settings: SettingsRegistry) -> None:
        """Declare ``metrics_port`` when passed as an object too (``port=None`` reads it)."""
        settings.add(METRICS_PORT)

    def bind(self, app: Delayed) -> None:
        """Attach to ``app``: a sweeper's queues are sampled through it; its ``metrics_port`` is the default."""
        self.app = app

    def brokers(self) -> list[tuple[str, Broker]]:
        """(queue, broker) pairs to sample: the queues this process serves or sweeps."""
        with self._lock:
            return [(queue, broker) for queue, (broker, _users) in sorted(self._queues.items())]

    def serve(self, port: int | None = None, registry: CollectorRegistry | None = None) -> int:
        """Start the HTTP endpoint once (later calls do nothing); return the port (0 when off).

        In a worker process of ``delayed worker --processes N`` this does nothing: the parent serves.
        """
        if registry is None and os.environ.get(SUPERVISED_ENV):
            return 0
        with self._lock:
            if self._server is not None:
                return self.bound_port
            if port is None:
                port = self.port if self.port is not None else (self.app.config.get(METRICS_PORT) if self.app else 0)
            if not port:
                return 0
            try:
                self._server, _thread = start_http_server(port, self.addr, registry=registry or self.registry)
            except OSError as exc:
                # Quiet at run time: a busy port costs the metrics, never the worker.
                logger.error("metrics: cannot listen on %s:%d (%s); metrics are not served", self.addr, port, exc)
                return 0
            self.bound_port = self._server.server_port
            logger.info("metrics served on http://%s:%d/metrics", self.addr, self.bound_port)
            return self.bound_port

    def serve_aggregated(self, queues: Sequence[str], directory: str) -> int:
        """In the parent of ``delayed worker --processes N``: serve the sum of the counters the worker
        processes write to ``directory``, with the gauges of ``queues``; return the port (0 when off)."""
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        registry.register(QueueGauges(self))
        if self.app is not None:
            for queue in queues:
                self._watch(queue, self.app.broker(queue), 1)
        return self.serve(registry=registry)

    def close(self) -> None:
        """Stop the HTTP endpoint (tests; a worker process simply exits)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _watch(self, queue: str, broker: Broker | None, delta: int) -> None:
        """Count users of ``queue`` in this process; sample it while there is one."""
        with self._lock:
            known, users = self._queues.get(queue, (broker, 0))
            if users + delta > 0 and known is not None:
                self._queues[queue] = (known, users + delta)
            else:
                self._queues.pop(queue, None)

    # -- hooks -----------------------------------------------------------------------------------
    @hookimpl
    def delayed_app_created(self, app: Delayed) -> None:
        """Passed as an object to ``Delayed(plugins=[...])``: bind to that app."""
        self.bind(app)

    @hookimpl
    def delayed_worker_started(self, worker: Worker) -> None:
        """Sample this worker's queue and serve the endpoint."""
        self._watch(worker.queue_name, worker.broker, 1)
        self.serve(self.port if self.port is not None else worker.config.get(METRICS_PORT))

    @hookimpl
    def delayed_worker_stopped(self, worker: Worker) -> None:
        """Stop sampling the queue (the endpoint stays up while the process lives)."""
        self._watch(worker.queue_name, None, -1)

    @hookimpl
    def delayed_task_enqueued(self, queue: str, task: Task) -> None:
        """Count an enqueue."""
        self.enqueued.labels(queue, function_of(task)).inc()

    @hookimpl
    def delayed_task_started(self, queue: str, task: PyTask, worker_id: str) -> None:
        """Count a run."""
        self.started.labels(queue, task.func_path).inc()

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Count a success and its duration."""
        self.succeeded.labels(queue, task.func_path).inc()
        self.duration.labels(queue, task.func_path).observe(outcome.duration)

    @hookimpl
    def delayed_task_failed(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """Count a failure and its duration."""
        self.failed.labels(queue, task.func_path, outcome.status.value).inc()
        self.duration.labels(queue, task.func_path).observe(outcome.duration)

    @hookimpl
    def delayed_task_requeued(self, queue: str, task: Task, worker_id: str, delay: float) -> None:
        """Count a retry."""
        self.retried.labels(queue, function_of(task)).inc()

    @hookimpl
    def delayed_task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        """Count a dead letter by reason."""
        self.dead_lettered.labels(queue, letter.reason).inc()

    @hookimpl
    def delayed_sweep_finished(self, queue: str, report: SweepReport) -> None:
        """Count what a sweeper recovered or poisoned; serve the endpoint from a sweeper process too."""
        if report.requeued:
            self.recovered.labels(queue).inc(report.requeued)
        if report.poisoned:
            self.dead_lettered.labels(queue, Reason.POISON).inc(report.poisoned)
        with self._lock:
            first = queue not in self._queues
        if first and self.app is not None:
            self._watch(queue, self.app.broker(queue), 1)
        self.serve()


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare ``metrics_port`` (loaded by module name)."""
    settings.add(METRICS_PORT)


@hookimpl
def delayed_app_created(app: Delayed) -> None:
    """Loaded by module name: register a Metrics object bound to this app (port from ``metrics_port``)."""
    metrics = Metrics()
    metrics.bind(app)
    app.register_plugin(metrics, name=f"delayed_plugins.metrics:{id(app)}")
