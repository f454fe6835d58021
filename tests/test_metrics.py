"""The metrics plugin, scraped over HTTP: exact counts with several slots and every executor."""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from delayed_core import ConfigError, Delayed, PyTask
from delayed_core.interfaces import SweepReport
from delayed_core.plugins import make_plugin_manager
from delayed_plugins.metrics import Metrics
from tests.conftest import Backend
from tests.support.redis_server import free_port

MODULE = __name__


def quick(n: int) -> int:
    """A task that succeeds."""
    time.sleep(0.01)
    return n


def broken() -> None:
    """A task that always fails."""
    raise ValueError("broken")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and return {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    plugin = Metrics(port=free_port(), addr="127.0.0.1")
    yield plugin
    plugin.close()


def available_executors() -> list[str]:
    app = Delayed("memory://probe", load_entry_points=False)
    return [name for name in ("thread", "fork", "subprocess") if name in app.registry.names("executor")]


@pytest.mark.parametrize("executor", available_executors())
def test_scraped_counts_match_what_ran(real_backend: Backend, metrics: Metrics, executor: str) -> None:
    app = real_backend.app(imports=[MODULE], plugins=[metrics], slots=3, executor=executor, dequeue_timeout=0.2)
    queue = app.queue("jobs")
    queue.enqueue_many([PyTask(f"{MODULE}:quick", [i]) for i in range(12)])
    queue.enqueue_many([PyTask(f"{MODULE}:broken", retry=1) for _ in range(2)])  # 2 runs each, then dead
    worker = app.worker("jobs")
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: real_backend.client.llen("jobs_dead") == 2 and real_backend.client.llen("jobs") == 0
                 and real_backend.client.hlen("jobs_processing") == 0)
        samples = scrape(metrics.bound_port)
    finally:
        worker.stop()
        thread.join(15)
    quick_fn, broken_fn = f"{MODULE}:quick", f"{MODULE}:broken"
    assert value(samples, "delayed_tasks_enqueued_total", queue="jobs", function=quick_fn) == 12
    assert value(samples, "delayed_tasks_started_total", queue="jobs", function=quick_fn) == 12
    assert value(samples, "delayed_tasks_succeeded_total", queue="jobs", function=quick_fn) == 12
    assert value(samples, "delayed_tasks_started_total", queue="jobs", function=broken_fn) == 4
    assert value(samples, "delayed_tasks_failed_total", queue="jobs", function=broken_fn, status="failed") == 4
    assert value(samples, "delayed_tasks_retried_total", queue="jobs", function=broken_fn) == 2
    assert value(samples, "delayed_tasks_dead_lettered_total", queue="jobs", reason="failed") == 2
    assert value(samples, "delayed_task_duration_seconds_count", queue="jobs", function=quick_fn) == 12
    assert value(samples, "delayed_task_duration_seconds_sum", queue="jobs", function=quick_fn) >= 12 * 0.01
    # Gauges, sampled from the broker at scrape time while the worker was serving.
    assert value(samples, "delayed_workers_live", queue="jobs") == 3
    assert value(samples, "delayed_dead_letters", queue="jobs") == 2
    assert value(samples, "delayed_queue_length", queue="jobs") == 0
    assert ("delayed_tasks_processing", (("queue", "jobs"),)) in samples


def test_loaded_by_module_name_it_serves_on_metrics_port(backend: Backend) -> None:
    port = free_port()
    app = backend.app(imports=[MODULE], plugins=["delayed_plugins.metrics"], metrics_port=port,
                      dequeue_timeout=0.2)
    (plugin,) = [p for p in app.plugin_manager.get_plugins() if isinstance(p, Metrics)]
    try:
        app.queue().enqueue_many([PyTask(f"{MODULE}:quick", [i]) for i in range(3)])
        app.queue().enqueue(PyTask(f"{MODULE}:quick", [9]), delay=60)
        app.worker().run(burst=True, install_signals=False)
        assert plugin.bound_port == port
        samples = scrape(port)
        assert value(samples, "delayed_tasks_succeeded_total", queue="default", function=f"{MODULE}:quick") == 3
        # The worker stopped: its queue is no longer sampled, the counters stay.
        assert ("delayed_queue_length", (("queue", "default"),)) not in samples
    finally:
        plugin.close()


def test_a_sweeper_process_counts_recovered_and_poisoned_tasks(backend: Backend, metrics: Metrics) -> None:
    app = backend.app(plugins=[metrics])
    app.notifier.delayed_sweep_finished(queue="q", report=SweepReport("q", requeued=3, poisoned=1))
    app.queue("q").enqueue(PyTask(f"{MODULE}:quick", [1]), delay=60)
    samples = scrape(metrics.bound_port)
    assert value(samples, "delayed_tasks_recovered_total", queue="q") == 3
    assert value(samples, "delayed_tasks_dead_lettered_total", queue="q", reason="poison") == 1
    assert value(samples, "delayed_tasks_scheduled", queue="q") == 1


def test_port_zero_serves_nothing_and_a_busy_port_does_not_stop_the_worker(backend: Backend) -> None:
    off = Metrics(port=0)
    app = backend.app(imports=[MODULE], plugins=[off], dequeue_timeout=0.2)
    app.queue().enqueue(PyTask(f"{MODULE}:quick", [1]))
    app.worker().run(burst=True, install_signals=False)
    assert off.bound_port == 0
    assert off.registry.get_sample_value("delayed_tasks_succeeded_total",
                                         {"queue": "default", "function": f"{MODULE}:quick"}) == 1
    first = Metrics(port=free_port(), addr="127.0.0.1")
    busy = Metrics(port=first.serve(), addr="127.0.0.1")
    try:
        assert busy.serve() == 0  # logged, not raised
    finally:
        first.close()


def test_missing_prometheus_client_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes `import prometheus_client` fail
    monkeypatch.delitem(sys.modules, "delayed_plugins.metrics")
    with pytest.raises(ConfigError, match=r"install pydelayed\[metrics\]") as info:
        make_plugin_manager(["delayed_plugins.metrics"], load_entry_points=False)
    assert "\n" not in str(info.value)
