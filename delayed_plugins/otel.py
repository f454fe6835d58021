"""The tracing plugin: OpenTelemetry spans for enqueues and task runs, linked across processes.

Install the extra (``pip install 'pydelayed[otel]'``: ``opentelemetry-api`` only; the SDK and its
exporters are your choice), configure a tracer provider as usual, then load the plugin in producers
and workers: ``plugins = ["delayed_plugins.otel"]``, ``delayed worker --plugin delayed_plugins.otel``,
or ``Delayed(..., plugins=[Tracing()])``.

- **Producer**: a ``PRODUCER`` span ``send <queue>`` per task, a child of whatever span is current (the
  web request). Its context travels inside the task, in the optional ``meta`` element, as W3C trace
  context under the key ``trace``. With no SDK configured the spans are not recording, nothing is
  written into the task, and its bytes stay those of delayed 1.2.
- **Consumer**: a ``CONSUMER`` span ``process <queue>`` per run, in the worker process, a child of the
  producer span and linked to it (the messaging conventions ask for the link; the parent keeps the run
  in the request's trace). It is the current span while a thread-executor task runs, so spans the task
  makes are its children. A retry carries the same context, so each run is its own span in one trace.
- **Failures**: status ``ERROR``, ``error.type``, and an ``exception`` event with the type, message and
  traceback excerpt the executor reported (the exception object itself stays in the process that ran it).

Attribute names follow the OpenTelemetry messaging semantic conventions (docs/observability.md lists them).
Tasks with trace context have five elements, which delayed 1.x workers cannot read: trace queues that
pydelayed workers serve.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from delayed_core import hookimpl
from delayed_core.task import PyTask

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised only without the extra
    # An ImportError: the plugin loader turns it into one configuration-error line naming the plugin.
    raise ImportError("the otel plugin needs opentelemetry-api: install pydelayed[otel]") from None

if TYPE_CHECKING:
    from delayed_core.app import Delayed
    from delayed_core.deadletter import DeadLetter
    from delayed_core.outcome import Outcome
    from delayed_core.task import Task
    from delayed_core.worker import Worker

#: the ``meta`` key that carries the W3C trace context (``traceparent``, ``tracestate``)
META_KEY = "trace"
#: ``messaging.system``: no well-known value fits, so the conventions allow a custom, low-cardinality one
SYSTEM = "pydelayed"
INSTRUMENTATION = "delayed_plugins.otel"


def server_attributes(broker_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of the broker (never its password), when the URL has them."""
    try:
        parts = urlsplit(broker_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    if parts.scheme == "unix":
        return {"server.address": parts.path} if parts.path else {}
    attributes: dict[str, Any] = {"server.address": host} if host else {}
    if port:
        attributes["server.port"] = port
    return attributes


class Tracing:
    """Makes the spans. One per app; thread-safe (slots and producer threads share it).

    :param tracer_provider: the provider to use; the global one (``trace.set_tracer_provider``) by default.
    :param server: ``server.*`` attributes added to every span.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None,
                 server: dict[str, Any] | None = None) -> None:
        self._tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        self._server = dict(server or {})
        self._lock = threading.Lock()
        # traceparent -> producer span waiting for the broker's answer
        self._sending: dict[str, trace.Span] = {}
        # worker id -> (consumer span, token of the context it made current); one task per id at a time
        self._running: dict[str, tuple[trace.Span, object]] = {}

    # -- producer ----------------------------------------------------------------------------------
    @hookimpl
    def delayed_task_enqueuing(self, queue: str, task: PyTask) -> dict[str, Any] | None:
        """Start the producer span and hand its context to the task."""
        span = self._tracer.start_span(f"send {queue}", kind=SpanKind.PRODUCER, attributes={
            **self._server, **messaging("send", "publish", queue),
            "messaging.pydelayed.message.function": task.func_path,
        })
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        key = carrier.get("traceparent")
        if key is None:  # no SDK: nothing recorded, nothing to carry, bytes untouched
            span.end()
            return None
        with self._lock:
            self._sending[key] = span
        return {META_KEY: carrier}

    @hookimpl
    def delayed_task_enqueued(self, queue: str, task: Task) -> None:
        """The broker has the task: the producer span ends."""
        span = self._take_sending(task)
        if span is not None:
            span.end()

    @hookimpl
    def delayed_task_enqueue_failed(self, queue: str, task: Task, error: Exception) -> None:
        """The write failed: the producer span ends in error."""
        span = self._take_sending(task)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.end()

    def _take_sending(self, task: Task) -> trace.Span | None:
        carrier = carried(task)
        key = carrier.get("traceparent") if carrier else None
        if key is None:
            return None
        with self._lock:
            return self._sending.pop(key, None)

    # -- consumer ----------------------------------------------------------------------------------
    @hookimpl
    def delayed_task_dequeued(self, queue: str, task: Task, worker_id: str) -> None:
        """Start the consumer span, as a child of (and linked to) the producer span the task carries."""
        if not isinstance(task, PyTask):
            return  # a Go task carries no context; it is dead-lettered without running here
        carrier = carried(task)
        # Extracting into a fresh context: a task without context starts a new trace, never a child of
        # whatever the slot thread had current.
        parent = propagate.extract(carrier, context=otel_context.Context()) if carrier else otel_context.Context()
        creation = trace.get_current_span(parent).get_span_context()
        links = [Link(creation)] if creation.is_valid else []
        span = self._tracer.start_span(f"process {queue}", context=parent, kind=SpanKind.CONSUMER, links=links,
                                       attributes={
                                           **self._server, **messaging("process", "process", queue),
                                           "messaging.client.id": worker_id,
                                           "messaging.pydelayed.message.function": task.func_path,
                                           "messaging.pydelayed.message.attempt": task.attempt + 1,
                                       })
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._running[worker_id] = (span, token)

    @hookimpl
    def delayed_task_succeeded(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """The run ended well."""
        self._finish(worker_id)

    @hookimpl
    def delayed_task_failed(self, queue: str, task: PyTask, worker_id: str, outcome: Outcome) -> None:
        """The run failed: error status, ``error.type`` and the exception as the executor reported it."""
        entry = self._pop_running(worker_id)
        if entry is None:
            return
        span, token = entry
        span.set_status(Status(StatusCode.ERROR, outcome.describe()))
        span.set_attribute("error.type", outcome.error_type or outcome.status.value)
        span.add_event("exception", {
            "exception.type": outcome.error_type or outcome.status.value,
            "exception.message": outcome.error,
            "exception.stacktrace": outcome.traceback,
        })
        self._end(span, token)

    @hookimpl
    def delayed_task_released(self, queue: str, task: Task, worker_id: str) -> None:
        """A run released with neither a success nor a failure reported ends its span here: a task
        cancelled while it ran, or just before (after a success or a failure, the span has ended)."""
        entry = self._pop_running(worker_id)
        if entry is not None:
            entry[0].add_event("cancelled")
            self._end(*entry)

    @hookimpl
    def delayed_task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        """A task refused before it ran (not allowed, or a plugin failed on the way) ends its span in error."""
        entry = self._pop_running(letter.worker)
        if entry is None:
            return  # the span already ended with the run's outcome
        span, token = entry
        span.set_status(Status(StatusCode.ERROR, letter.error))
        span.set_attribute("error.type", letter.reason)
        self._end(span, token)

    @hookimpl
    def delayed_worker_stopped(self, worker: Worker) -> None:
        """Spans of tasks handed back at shutdown end here, marked as such, so none is lost."""
        for worker_id in worker.worker_ids:
            entry = self._pop_running(worker_id)
            if entry is not None:
                entry[0].add_event("handed back to the queue at shutdown")
                entry[0].end()  # no detach: the slot thread that attached it is gone

    def _finish(self, worker_id: str) -> None:
        entry = self._pop_running(worker_id)
        if entry is not None:
            self._end(*entry)

    def _pop_running(self, worker_id: str) -> tuple[trace.Span, object] | None:
        with self._lock:
            return self._running.pop(worker_id, None)

    @staticmethod
    def _end(span: trace.Span, token: object) -> None:
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


def messaging(operation: str, kind: str, queue: str) -> dict[str, Any]:
    """The messaging attributes every span has."""
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "messaging.destination.name": queue,
    }


def carried(task: Task) -> dict[str, str] | None:
    """The trace context a task carries, if it is a well-formed one."""
    if not isinstance(task, PyTask):
        return None
    carrier = task.meta.get(META_KEY)
    if not isinstance(carrier, dict):
        return None
    return {key: value for key, value in carrier.items() if isinstance(key, str) and isinstance(value, str)}


@hookimpl
def delayed_app_created(app: Delayed) -> None:
    """Loaded by module name: trace this app with the global tracer provider (nothing kept at module level)."""
    app.register_plugin(Tracing(server=server_attributes(app.config.broker_url)), name=f"{INSTRUMENTATION}:{id(app)}")
