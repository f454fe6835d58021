"""What a new user meets in the first hour, run as they run it: the installed ``delayed`` command and
``python`` started in a fresh folder, with no PYTHONPATH, against the test's redis-server."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from delayed_core.main_module import module_name_of
from tests.support import cli
from tests.support.redis_server import RedisServer


def one_line_error(result: object) -> str:
    """The single stderr line of a failed command (no traceback)."""
    assert result.returncode != 0, result  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in lines[0], result.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_version(tmp_path: Path) -> None:
    result = cli.delayed("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"delayed (pydelayed) {metadata.version('pydelayed')}\n"


@pytest.mark.real_redis
def test_worker_and_plugins_import_from_the_working_directory(real_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text("def touch(name):\n    open(name, 'w').close()\n")
    (tmp_path / "myplugin.py").write_text(textwrap.dedent("""
        from delayed_core import hookimpl

        @hookimpl
        def delayed_task_succeeded(queue, task, worker_id, outcome):
            open("plugin-saw-" + task.args[0], "w").close()
    """))
    enqueue = cli.python("-c", f"from delayed_core import Delayed, PyTask; Delayed({real_redis.url!r}).queue()"
                               ".enqueue(PyTask('jobs:touch', ['done']))", cwd=tmp_path)
    assert enqueue.returncode == 0, enqueue.stderr
    result = cli.delayed("worker", "--broker", real_redis.url, "--import", "jobs", "--plugin", "myplugin",
                         "--burst", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "done").exists() and (tmp_path / "plugin-saw-done").exists()


@pytest.mark.parametrize("url, hint", [
    ("localhost:6379", "did you mean redis://localhost:6379?"),
    ("127.0.0.1:6379/0", "did you mean redis://127.0.0.1:6379/0?"),
    ("admin:s3cret@cache:6379", "did you mean redis://admin:***@cache:6379?"),
])
@pytest.mark.parametrize("command", [["info"], ["worker"], ["sweeper", "--once"]])
def test_broker_without_a_scheme_gets_a_hint(tmp_path: Path, url: str, hint: str, command: list[str]) -> None:
    result = cli.delayed(*command, "--broker", url, cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2
    assert line.endswith(hint) and "s3cret" not in line


@pytest.mark.parametrize("command", [["worker", "--burst"], ["sweeper", "--once"], ["info"], ["info", "--json"],
                                     ["dead", "list"], ["dead", "purge", "--yes"]])
def test_memory_broker_is_refused_by_commands_in_their_own_process(tmp_path: Path, command: list[str]) -> None:
    for given in ({"args": ["--broker", "memory://x"], "env": {}},
                  {"args": [], "env": {"DELAYED_BROKER_URL": "memory://x"}}):
        result = cli.delayed(*command, *given["args"], cwd=tmp_path, env=given["env"])  # type: ignore[arg-type]
        line = one_line_error(result)
        assert result.returncode == 2, result.stderr
        assert "lives inside one Python process" in line and "redis://" in line
        assert result.stdout == ""


@pytest.mark.real_redis
def test_tasks_of_a_script_are_enqueued_under_the_name_a_worker_imports(real_redis: RedisServer,
                                                                        tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    script = textwrap.dedent(f"""
        from delayed_core import Delayed

        app = Delayed({real_redis.url!r})


        @app.task
        def ship(order):
            open(f"shipped-{{order}}", "w").close()


        if __name__ == "__main__":
            ship.delay(1)
            app.queue().enqueue(ship.task(2))
    """)
    (package / "orders.py").write_text(script)
    (tmp_path / "tasks.py").write_text(script.replace("shipped-", "tasks-shipped-"))
    for command in (["shop/orders.py"], ["-m", "shop.orders"], ["tasks.py"], ["-m", "tasks"]):
        result = cli.python(*command, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
    client = real_redis.client()
    names = [raw for raw in client.lrange("default", 0, -1)]
    assert len(names) == 8
    assert sum(b"shop.orders:ship" in raw for raw in names) == 4
    assert sum(b"tasks:ship" in raw for raw in names) == 4
    result = cli.delayed("worker", "--broker", real_redis.url, "--import", "shop.orders", "--import", "tasks",
                         "--burst", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.glob("*shipped-*")) == [
        "shipped-1", "shipped-2", "tasks-shipped-1", "tasks-shipped-2"]
    assert client.llen("default_dead") == 0


@pytest.mark.real_redis
@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_task_no_worker_can_import_is_refused_at_delay(real_redis: RedisServer, tmp_path: Path, how: str) -> None:
    code = textwrap.dedent(f"""
        import datetime
        from delayed_core import Delayed, DelayedError

        app = Delayed({real_redis.url!r})

        @app.task
        def f(n):
            return n

        assert f(3) == 3  # calling it here still works
        for enqueue in (lambda: f.delay(1), lambda: f.delay_in(5, 1), lambda: f.task(1),
                        lambda: f.delay_at(datetime.datetime.now(), 1)):
            try:
                enqueue()
            except DelayedError as exc:
                print(exc)
    """)
    if how == "-c":
        result = cli.python("-c", code, cwd=tmp_path)
    else:
        (tmp_path / "snippet.txt").write_text(code)
        result = cli.run(["sh", "-c", f"'{cli.sys.executable}' - < snippet.txt"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and len(set(lines)) == 1, result.stdout
    assert lines[0].startswith("cannot enqueue f: it is defined in __main__") and "--import" in lines[0]
    assert real_redis.client().dbsize() == 0


def test_module_name_of(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "__init__.py").write_text("")
    (tmp_path / "a" / "b" / "__init__.py").write_text("")
    assert module_name_of(tmp_path / "tasks.py") == "tasks"
    assert module_name_of(tmp_path / "a" / "b" / "jobs.py") == "a.b.jobs"
    assert module_name_of(tmp_path / "my-tasks.py") is None
    assert module_name_of(tmp_path / "tasks.pyc") is None


# -- delayed config: only what takes effect -------------------------------------------------------
def config_json(tmp_path: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = cli.delayed("config", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_config_marks_settings_that_do_not_take_effect(tmp_path: Path) -> None:
    shown = config_json(tmp_path, {})
    inactive = {name for name, row in shown.items() if not row["in_effect"]}
    assert inactive == {"max_tasks_per_child", "max_memory_per_child"}
    assert "executor is thread" in str(shown["max_tasks_per_child"]["not_in_effect"])
    # A plugin's settings appear when it is loaded: the metrics plugin is not.
    assert "metrics_port" not in shown
    # Retry backoff is built in (the retry_policy plugin, always loaded): always shown as in effect.
    assert shown["retry_backoff"]["in_effect"] is True
    assert shown["retry_backoff"]["plugin"] == "delayed_plugins.retry_policy" and "plugin" not in shown["slots"]

    table = cli.delayed("config", cwd=tmp_path)
    lines = table.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines}
    assert "not in effect: only the subprocess executor uses it" in rows["max_memory_per_child"]
    assert "not in effect" not in rows["slots"] and "not in effect" not in rows["retry_backoff"]
    # Listed under their plugin, after the core's settings.
    assert lines.index("[plugin delayed_plugins.executors.plugin]") == lines.index(rows["max_tasks_per_child"]) - 1
    assert lines.index(rows["log_format"]) < lines.index("[plugin delayed_plugins.retry_policy]") < lines.index(
        rows["retry_backoff"])


def test_config_shows_them_in_effect_when_their_executor_or_plugin_is_used(tmp_path: Path) -> None:
    shown = config_json(tmp_path, {"DELAYED_EXECUTOR": "subprocess", "DELAYED_PLUGINS": "delayed_plugins.metrics"})
    assert all(row["in_effect"] for row in shown.values()), shown
    assert shown["metrics_port"] == {"value": 0, "source": "default", "in_effect": True,
                                     "plugin": "delayed_plugins.metrics"}
    # A queue's own executor counts: [queues.media] runs subprocess children.
    (tmp_path / "delayed.toml").write_text('[queues.media]\nexecutor = "subprocess"\nmax_tasks_per_child = 50\n')
    assert config_json(tmp_path, {})["max_tasks_per_child"]["in_effect"] is False
    result = cli.delayed("config", "--json", "--queue", "media", cwd=tmp_path)
    media = json.loads(result.stdout)
    assert media["max_tasks_per_child"] == {"value": 50, "source": f"file {tmp_path / 'delayed.toml'} "
                                                                    "[queues.media]", "in_effect": True,
                                            "plugin": "delayed_plugins.executors.plugin"}


def test_a_setting_of_a_plugin_that_is_not_loaded_fails_with_a_hint(tmp_path: Path) -> None:
    result = cli.delayed("config", cwd=tmp_path, env={"DELAYED_METRICS_PORT": "9100"})
    assert result.returncode == 2 and result.stdout == ""  # 2: a configuration error, as for any bad setting
    assert result.stderr.strip() == (
        "delayed config: configuration error: environment variable DELAYED_METRICS_PORT: unknown setting "
        "'metrics_port' (it is a setting of the plugin delayed_plugins.metrics, which is not loaded: add it to "
        "'plugins')")
    (tmp_path / "delayed.toml").write_text('plugins = ["delayed_plugins.metrics"]\nmetrics_port = 9100\n')
    assert config_json(tmp_path, {})["metrics_port"]["value"] == 9100


# -- Windows: no SIGHUP ---------------------------------------------------------------------------
#: the signals Windows has; every other one is hidden to play Windows on this machine
WINDOWS_SIGNALS = {"SIGABRT", "SIGBREAK", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM"}
HIDE_POSIX_SIGNALS = f"""
import signal
for name in [name for name in dir(signal) if name.startswith("SIG") and "_" not in name]:
    if name not in {sorted(WINDOWS_SIGNALS)!r}:
        delattr(signal, name)
assert not hasattr(signal, "SIGHUP") and not hasattr(signal, "SIGKILL")
"""


@pytest.mark.real_redis
def test_import_enqueue_and_a_thread_worker_without_posix_signals(real_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(textwrap.dedent(f"""
        from delayed_core import Delayed

        app = Delayed({real_redis.url!r})


        @app.task
        def note(text: str) -> None:
            with open("notes.txt", "a") as out:
                print(text, file=out)
    """))
    (tmp_path / "produce.py").write_text(HIDE_POSIX_SIGNALS + textwrap.dedent("""
        from tasks import app, note

        note.delay("one")
        note.delay_in(60, "two")
        print(len(app.queue()))
        app.worker(imports=["tasks"], dequeue_timeout=0.2).run(burst=True)
    """))
    result = cli.python("produce.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    assert (tmp_path / "notes.txt").read_text() == "one\n"
    client = real_redis.client()
    assert client.llen("default") == 0 and client.llen("default_dead") == 0
    assert client.zcard("default_scheduled") == 1


@pytest.mark.real_redis
def test_options_given_to_app_task_apply_under_the_cli_worker(real_redis: RedisServer, tmp_path: Path) -> None:
    """``@app.task(timeout=..., name=...)`` on the module's own app is honoured by ``delayed worker
    --import module``, whose app is another object: the worker picks the options up from the module."""
    (tmp_path / "jobs.py").write_text(textwrap.dedent(f"""
        import time

        from delayed_core import Delayed

        app = Delayed({real_redis.url!r})


        @app.task(timeout=1)
        def slow():
            time.sleep(30)


        @app.task(name="billing.charge")
        def charge(amount):
            open(f"charged-{{amount}}", "w").close()


        if __name__ == "__main__":
            slow.delay()
            charge.delay(5)
    """))
    produced = cli.python("jobs.py", cwd=tmp_path)
    assert produced.returncode == 0, produced.stderr
    result = cli.delayed("worker", "--broker", real_redis.url, "--import", "jobs", "--executor", "subprocess",
                         "--burst", cwd=tmp_path, timeout=25)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "charged-5").exists()
    assert "billing.charge" in result.stderr  # the banner lists it
    (letter,) = [json.loads(raw) for raw in real_redis.client().lrange("default_dead", 0, -1)]
    assert letter["reason"] == "timeout" and letter["func"] == "jobs:slow", letter
