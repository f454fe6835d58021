"""The CLI's start-up work: one plugin manager per command, one argument parser; an admin command imports
no other command's module, no worker, executor or dashboard module, and none of ours that imports
asyncio; the garbage collector paused for the start-up only. (Its time is measured by
bench/cli_start.py, never asserted.)"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest

from delayed_core import Delayed, load_config
from delayed_core.cli import common
from delayed_core.cli.main import build_parser
from delayed_core.config_file import ConfigFile
from delayed_core.deadletter import DeadLetter
from delayed_core.task import PyTask
from tests.support.cli import delayed, python
from tests.support.redis_server import RedisServer


def test_the_first_app_takes_the_plugin_manager_that_resolved_its_config() -> None:
    config = load_config({"broker_url": "memory://start"}, env={}, config_file=ConfigFile(), load_entry_points=False)
    assert config.plugins_handoff is not None
    first = Delayed(config=config, load_entry_points=False)
    second = Delayed(config=config, load_entry_points=False)
    assert first.plugin_manager is config.plugins_handoff.manager
    # a later app on the same config gets its own: apps never share plugin state
    assert second.plugin_manager is not first.plugin_manager


def test_an_app_with_other_plugins_builds_its_own_manager() -> None:
    config = load_config({"broker_url": "memory://start"}, env={}, config_file=ConfigFile(), load_entry_points=False)
    assert config.plugins_handoff is not None
    app = Delayed(config=config, load_entry_points=True)
    assert app.plugin_manager is not config.plugins_handoff.manager


def test_the_console_scripts_pause_of_garbage_collection_ends_with_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "setup_logging", lambda *args: None)  # the test process keeps its logging
    config = load_config({"broker_url": "redis://127.0.0.1:1/0"}, env={}, config_file=ConfigFile(),
                         load_entry_points=False)
    try:
        common.pause_collection()
        assert not gc.isenabled()
        common.build_app(config)
        assert gc.isenabled()
        # a program that turned the collector off itself keeps it off
        gc.disable()
        common.pause_collection()
        common.build_app(config)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_named_command_parses_as_with_every_command_built() -> None:
    argv = ["dead", "list", "--queue", "q", "--limit", "5", "--json"]
    assert vars(build_parser("dead").parse_args(argv)) == vars(build_parser().parse_args(argv))


#: Runs ``delayed ARGS`` as the console script does, then prints as JSON every module the run imported and
#: every module that executed an ``import asyncio`` statement. Recording the statements, not only
#: ``sys.modules``, keeps the check meaningful while redis-py imports asyncio itself.
RECORDING_RUN = """
import builtins, json, sys
importers = set()
real_import = builtins.__import__

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.partition(".")[0] == "asyncio":
        importers.add((globals or {}).get("__name__"))
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = recording_import
from delayed_core.cli.main import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "modules": sorted(sys.modules), "asyncio_importers": sorted(map(str, importers))}))
"""

OURS = ("delayed_core", "delayed_redis", "delayed_plugins", "delayed_dashboard")
#: what an admin command must not import: the other commands, the worker's and the producer's modules,
#: the executors and the web dashboard (prefixes)
NOT_FOR_ADMIN = (
    "delayed_dashboard",
    *(f"delayed_core.cli.{name}" for name in ("worker", "sweeper", "task", "periodic", "dashboard", "demo",
                                               "config_cmd", "doctor")),
    *(f"delayed_core.{name}" for name in ("worker", "runner", "sweeper", "supervisor", "doctor", "periodic_loop",
                                          "periodic", "queue", "async_queue", "task_function", "submit",
                                          "prefetch", "rate_limit")),
    *(f"delayed_plugins.executors.{name}" for name in ("thread", "fork", "fork_server", "subprocess_executor",
                                                       "asyncio_executor", "awaiting", "watchdog", "ipc")),
    "delayed_redis.doctor",
)


def recorded_run(*args: str, cwd: Path) -> dict[str, Any]:
    """What ``delayed ARGS`` imported (see :data:`RECORDING_RUN`); the command must succeed."""
    result = python("-c", RECORDING_RUN, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    record: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert record["status"] == 0, result.stderr
    return record


@pytest.mark.parametrize("command", [["info"], ["dead", "list"]], ids=" ".join)
def test_an_admin_command_imports_only_what_it_uses(real_redis: RedisServer, tmp_path: Path,
                                                    command: list[str]) -> None:
    app = Delayed(broker_url=real_redis.url)
    task = app.serializer.dumps(PyTask("pkg:f", [1]))
    app.broker("default").enqueue([task])
    app.broker("default").dead_letter(None, DeadLetter(task=task, reason="failed", queue="default").to_json())
    app.close()
    record = recorded_run(*command, "--broker", real_redis.url, cwd=tmp_path)
    assert [name for name in record["modules"] if name.startswith(NOT_FOR_ADMIN)] == []
    assert [name for name in record["asyncio_importers"] if name.startswith(OURS)] == []
    # the plugins still load: the built-in ones and the Redis broker the command talks to
    assert {"delayed_plugins.memory_broker", "delayed_plugins.executors.plugin", "delayed_redis.broker"} <= set(
        record["modules"])


def test_admin_commands_still_load_third_party_plugins_from_entry_points(real_redis: RedisServer,
                                                                        tmp_path: Path) -> None:
    site = tmp_path / "site"  # an installed distribution that declares a plugin in the `delayed` group
    dist_info = site / "cli_start_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: cli-start-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[delayed]\ncli-start = cli_start_plugin\n")
    (site / "cli_start_plugin.py").write_text(
        "import sys\nfrom delayed_core import hookimpl\n\n\n@hookimpl\ndef delayed_app_created(app):\n"
        "    print('cli_start_plugin: app created', file=sys.stderr)\n")
    for command in (["info"], ["dead", "list"]):
        result = delayed(*command, "--broker", real_redis.url, cwd=tmp_path, env={"PYTHONPATH": str(site)})
        assert result.returncode == 0, result.stderr
        assert "cli_start_plugin: app created" in result.stderr


def test_the_recording_sees_an_asyncio_import(tmp_path: Path) -> None:
    # the check above means something only if the recorder notices an import statement of ours: the demo
    # runs a thread-executor worker, whose module imports asyncio (for coroutine functions)
    record = recorded_run("demo", cwd=tmp_path)
    assert any(name.startswith(OURS) for name in record["asyncio_importers"]), record["asyncio_importers"]
