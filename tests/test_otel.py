"""Tracing: producer spans in this process (the SDK's in-memory exporter), consumer spans in a real worker
process on a real redis-server, linked by the trace context carried inside the task."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from delayed_core import Delayed, PyTask, hookimpl
from delayed_core.errors import BrokerUnavailable
from delayed_core.task_function import TaskFunction
from delayed_core.testing.processes import wait_until
from delayed_plugins.otel import Tracing, server_attributes
from tests import handle_tasks
from tests.support import cli
from tests.support.redis_server import RedisServer
from tests.test_executors import wait_for

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "traced"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """An in-memory exporter behind a private SDK provider (the global provider stays untouched)."""
    return InMemorySpanExporter()


def traced_app(url: str, exporter: InMemorySpanExporter, **settings: Any) -> Delayed:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Delayed(url, plugins=[Tracing(tracer_provider=provider, server=server_attributes(url))],
                   load_entry_points=False, **settings)


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_producer_and_consumer_spans_across_a_real_worker(real_redis: RedisServer, spans: InMemorySpanExporter,
                                                         tmp_path: Path) -> None:
    app = traced_app(real_redis.url, spans)
    queue = app.queue(QUEUE)
    queue.enqueue(PyTask("tests.otel_tasks:ok", [1]))
    queue.enqueue(PyTask("tests.otel_tasks:boom", ["no luck"]))
    queue.enqueue(PyTask("tests.otel_tasks:boom", ["twice"], retry=1))
    produced = {span.attributes["messaging.pydelayed.message.function"] + str(i): span
                for i, span in enumerate(spans.get_finished_spans())}
    assert len(produced) == 3
    for span in produced.values():
        assert span.kind is SpanKind.PRODUCER and span.name == f"send {QUEUE}"
        assert span.attributes["messaging.system"] == "pydelayed"
        assert span.attributes["messaging.operation.type"] == "publish"
        assert span.attributes["messaging.destination.name"] == QUEUE
        assert span.attributes["server.port"] == real_redis.port
    ok_span, fail_span, retry_span = list(produced.values())

    span_file = tmp_path / "spans.jsonl"
    env = cli.user_environment({"PYTHONPATH": str(ROOT), "PYDELAYED_TEST_SPANS": str(span_file),
                                "DELAYED_RETRY_BACKOFF": "0"})
    log = tmp_path / "worker.log"

    def consumer_spans() -> list[dict[str, Any]]:
        return [span for span in read_spans(span_file) if span["kind"] == "CONSUMER"]

    with log.open("wb") as out:
        worker = subprocess.Popen(
            [cli.DELAYED, "worker", "--broker", real_redis.url, "--queue", QUEUE, "--import", "tests.otel_tasks",
             "--plugin", "delayed_plugins.otel", "--plugin", "tests.support.otel_file_exporter"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: len(consumer_spans()) >= 4, 60, "4 consumer spans")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    assert worker.returncode == 0, log.read_text()
    consumed = consumer_spans()
    assert len(consumed) == 4

    def runs_of(producer: Any) -> list[dict[str, Any]]:
        trace_id = f"{producer.context.trace_id:032x}"
        span_id = f"{producer.context.span_id:016x}"
        runs = [s for s in consumed if s["trace_id"] == trace_id]
        for run in runs:  # a child of the producer span, and linked to it
            assert run["parent_span_id"] == span_id and run["links"] == [f"{trace_id}/{span_id}"]
            assert run["name"] == f"process {QUEUE}"
            assert run["attributes"]["messaging.operation.type"] == "process"
            assert run["attributes"]["messaging.destination.name"] == QUEUE
            assert len(run["attributes"]["messaging.client.id"]) == 32
        return sorted(runs, key=lambda s: s["attributes"]["messaging.pydelayed.message.attempt"])

    [ok_run] = runs_of(ok_span)
    assert ok_run["status"] == "UNSET" and ok_run["events"] == []
    [failed_run] = runs_of(fail_span)
    assert failed_run["status"] == "ERROR"
    assert failed_run["attributes"]["error.type"] == "ValueError"
    [event] = failed_run["events"]
    assert event["name"] == "exception" and event["attributes"]["exception.message"] == "no luck"
    assert "ValueError: no luck" in event["attributes"]["exception.stacktrace"]
    first, second = runs_of(retry_span)
    assert [first["attributes"]["messaging.pydelayed.message.attempt"],
            second["attributes"]["messaging.pydelayed.message.attempt"]] == [1, 2]
    assert first["span_id"] != second["span_id"] and first["status"] == second["status"] == "ERROR"


def test_without_an_sdk_the_task_bytes_stay_delayed_12(real_redis: RedisServer) -> None:
    # The API alone (no SDK provider) records nothing, so nothing is carried: the bytes are delayed 1.2's.
    app = Delayed(real_redis.url, plugins=[Tracing(tracer_provider=trace.NoOpTracerProvider())],
                  load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask("tests.otel_tasks:ok", [1]))
    assert real_redis.client().lrange(QUEUE, 0, -1) == [msgpack.packb(("tests.otel_tasks:ok", [1]))]


def test_the_context_travels_in_the_meta_element_of_a_copy(real_redis: RedisServer,
                                                           spans: InMemorySpanExporter) -> None:
    app = traced_app(real_redis.url, spans)
    task = PyTask("tests.otel_tasks:ok", [1])
    app.queue(QUEUE).enqueue(task)
    assert task.meta == {}  # the caller's object is not edited
    [raw] = real_redis.client().lrange(QUEUE, 0, -1)
    path, args, kwargs, retry, meta = msgpack.unpackb(raw)
    [span] = spans.get_finished_spans()
    assert (path, args, kwargs, retry) == ("tests.otel_tasks:ok", [1], {}, 0)
    assert meta["trace"]["traceparent"].startswith(f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-")


def test_the_producer_span_is_a_child_of_the_current_span(real_redis: RedisServer,
                                                          spans: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = Delayed(real_redis.url, plugins=[Tracing(tracer_provider=provider)], load_entry_points=False)
    with provider.get_tracer("web").start_as_current_span("POST /orders") as request:
        app.queue(QUEUE).enqueue_many([PyTask("tests.otel_tasks:ok", [n]) for n in range(3)])
    sends = [span for span in spans.get_finished_spans() if span.name == f"send {QUEUE}"]
    assert len(sends) == 3 and len({span.context.span_id for span in sends}) == 3
    assert all(span.parent.span_id == request.get_span_context().span_id for span in sends)


def test_a_failed_enqueue_ends_its_span_in_error(spans: InMemorySpanExporter) -> None:
    from tests.support.redis_server import free_port

    app = traced_app(f"redis://127.0.0.1:{free_port()}/0", spans)
    with pytest.raises(BrokerUnavailable):
        app.queue(QUEUE).enqueue(PyTask("tests.otel_tasks:ok", [1]))
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "BrokerUnavailable"
    assert [event.name for event in span.events] == ["exception"]


def test_enqueue_hooks_see_the_copy_and_a_failing_plugin_never_stops_an_enqueue(real_redis: RedisServer) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Adds:
        @hookimpl
        def delayed_task_enqueuing(self, queue: str, task: PyTask) -> dict[str, Any] | None:
            return {"tenant": "acme"}

        @hookimpl
        def delayed_task_enqueued(self, queue: str, task: Any) -> None:
            seen.append((queue, dict(task.meta)))

    class Broken:
        @hookimpl
        def delayed_task_enqueuing(self, queue: str, task: PyTask) -> dict[str, Any] | None:
            raise RuntimeError("plugin bug")

    app = Delayed(real_redis.url, plugins=[Adds()], load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask("tests.otel_tasks:ok", [1]))
    assert seen == [(QUEUE, {"tenant": "acme"})]
    broken = Delayed(real_redis.url, plugins=[Broken()], load_entry_points=False)
    broken.queue(QUEUE).enqueue(PyTask("tests.otel_tasks:ok", [2]))
    assert real_redis.client().lrange(QUEUE, 1, 1) == [msgpack.packb(("tests.otel_tasks:ok", [2]))]


def test_enqueue_failed_fires_once_per_task_of_a_failed_write() -> None:
    from tests.support.redis_server import free_port

    failed: list[tuple[str, str]] = []

    class Watch:
        @hookimpl
        def delayed_task_enqueue_failed(self, queue: str, task: Any, error: Exception) -> None:
            failed.append((task.func_path, type(error).__name__))

    app = Delayed(f"redis://127.0.0.1:{free_port()}/0", plugins=[Watch()], load_entry_points=False)
    with pytest.raises(BrokerUnavailable):
        app.queue(QUEUE).enqueue_many([PyTask("m:a"), PyTask("m:b")])
    assert failed == [("m:a", "BrokerUnavailable"), ("m:b", "BrokerUnavailable")]


def test_the_docs_example_traces_an_enqueue(real_redis: RedisServer, spans: InMemorySpanExporter) -> None:
    import re

    text = (ROOT / "docs" / "observability.md").read_text()
    [block] = re.findall(r"```python\n(.*?)```", text, re.S)
    # The example's console exporter, swapped for one the test can read.
    code = block.replace("redis://localhost:6379/0", real_redis.url).replace("ConsoleSpanExporter()", "EXPORTER")
    exec(compile(code, "observability.md", "exec"), {"EXPORTER": spans})
    [raw] = real_redis.client().lrange("default", 0, -1)
    [span] = spans.get_finished_spans()
    assert span.name == "send default"
    assert msgpack.unpackb(raw)[4]["trace"]["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"


def test_a_refused_task_ends_its_span_with_the_reason(spans: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = Delayed("memory://otel-refused", plugins=[Tracing(tracer_provider=provider)], load_entry_points=False)
    app.queue(QUEUE).enqueue(PyTask("os:system", ["true"]))  # not in the worker's allowed set
    app.worker(QUEUE, imports=["tests.otel_tasks"]).run(burst=True, install_signals=False)
    send, process = sorted(spans.get_finished_spans(), key=lambda span: span.kind.value)
    assert (send.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert process.parent.span_id == send.context.span_id
    assert process.status.status_code is StatusCode.ERROR and process.attributes["error.type"] == "not_allowed"


def test_a_cancelled_task_ends_its_span(real_redis: RedisServer, spans: InMemorySpanExporter) -> None:
    """A task stopped by handle.cancel() reports neither a success nor a failure: its consumer span ends
    at the release, with a "cancelled" event (it stayed open, attached to the slot thread, before)."""
    app = traced_app(real_redis.url, spans, imports=["tests.handle_tasks"], dequeue_timeout=0.2)
    worker = app.worker(executor="thread")
    thread = threading.Thread(target=lambda: worker.run(install_signals=False), daemon=True)
    thread.start()
    try:
        handle = TaskFunction(app, handle_tasks.spin.func, handle_tasks.spin.path, "default", 0).delay(30, "never")
        assert handle is not None
        assert wait_until(lambda: handle.status() == "running", 15)
        assert handle.cancel() is True
        assert wait_until(lambda: any(s.kind is SpanKind.CONSUMER for s in spans.get_finished_spans()), 10)
    finally:
        worker.stop()
        thread.join(15)
    [process] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.CONSUMER]
    assert [event.name for event in process.events] == ["cancelled"]
