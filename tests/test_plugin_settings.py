"""Plugins declare their settings (``delayed_add_settings``) and read them with a typed accessor; the
worker checks a task's path cheaply and the executor resolves it where it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from delayed_core import Delayed, hookimpl
from delayed_core.config import ConfigFile, find_config_file, load_config
from delayed_core.deadletter import DeadLetter
from delayed_core.errors import ConfigError, TaskNotAllowed
from delayed_core.functions import FunctionRegistry
from delayed_core.settings import Setting, SettingsRegistry, positive
from delayed_core.task import PyTask
from delayed_plugins.executors.subprocess_executor import MAX_TASKS_PER_CHILD
from delayed_plugins.retry_policy import RETRY_BACKOFF, RETRY_JITTER

LEVEL: Setting[int] = Setting("probe_level", int, 3, "probe plugin: how loud", positive, per_queue=True)
OWNER = f"{__name__}.Probe"


class Probe:
    """A plugin object that declares one setting."""

    @hookimpl
    def delayed_add_settings(self, settings: SettingsRegistry) -> None:
        settings.add(LEVEL)


def test_a_declared_setting_is_read_from_every_source_and_typed(tmp_path: Path) -> None:
    config = load_config(env={}, config_file=ConfigFile(), plugins=[Probe()], load_entry_points=False)
    assert config.get(LEVEL) == 3 and config.sources["probe_level"] == "default"
    assert config.settings.owner("probe_level") == OWNER and config.settings.owner("slots") == ""

    config = load_config(env={"DELAYED_PROBE_LEVEL": "5"}, config_file=ConfigFile(), plugins=[Probe()])
    assert config.get(LEVEL) == 5 and config.sources["probe_level"] == "env DELAYED_PROBE_LEVEL"
    config = load_config({"probe_level": 7}, env={"DELAYED_PROBE_LEVEL": "5"}, config_file=ConfigFile(),
                         plugins=[Probe()])
    assert config.get(LEVEL) == 7 and config.sources["probe_level"] == "argument"

    (tmp_path / "delayed.toml").write_text("probe_level = 4\n[queues.loud]\nprobe_level = 9\n")
    config = load_config(env={}, config_file=find_config_file(cwd=tmp_path, env={}), plugins=[Probe()])
    assert config.get(LEVEL) == 4 and config.for_queue("loud").get(LEVEL) == 9
    assert config.for_queue("loud").sources["probe_level"].endswith("[queues.loud]")


def test_an_app_and_its_workers_take_plugin_settings_as_keyword_arguments() -> None:
    app = Delayed("memory://plugin-settings", plugins=[Probe()], load_entry_points=False, probe_level=2)
    assert app.config.get(LEVEL) == 2
    assert app.worker("q", probe_level=6).config.get(LEVEL) == 6


@pytest.mark.parametrize(("env", "message"), [
    ({"DELAYED_PROBE_LEVL": "5"}, r"DELAYED_PROBE_LEVL: unknown setting 'probe_levl' \(did you mean 'probe_level'\?\)"),
    ({"DELAYED_PROBE_LEVEL": "0"}, r"DELAYED_PROBE_LEVEL: probe_level must be > 0, got '0'"),
    ({"DELAYED_PROBE_LEVEL": "loud"}, r"probe_level must be an integer"),
])
def test_plugin_settings_are_checked_like_the_cores(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(env=env, config_file=ConfigFile(), plugins=[Probe()])
    assert "\n" not in str(info.value)


def test_without_its_plugin_a_setting_is_unknown_and_reads_as_its_default() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'probe_level'"):
        load_config(env={"DELAYED_PROBE_LEVEL": "5"}, config_file=ConfigFile())
    assert load_config(env={}, config_file=ConfigFile()).get(LEVEL) == 3  # nothing can have set it


def test_a_name_declared_twice_is_refused_but_one_object_may_be_shared() -> None:
    class Clash:
        @hookimpl
        def delayed_add_settings(self, settings: SettingsRegistry) -> None:
            settings.add(Setting("slots", int, 2, "mine"))

    with pytest.raises(ConfigError, match=r"Clash declares setting 'slots', which the core declares already"):
        load_config(env={}, config_file=ConfigFile(), plugins=[Clash()])
    # The retry plugin declares the built-in policy's backoff settings again: the same objects.
    config = load_config(env={"DELAYED_RETRY_BACKOFF": "2.5"}, config_file=ConfigFile(),
                         plugins=["delayed_plugins.retry"])
    assert config.get(RETRY_BACKOFF) == 2.5 and config.get(RETRY_JITTER) is True
    assert config.settings.owner("retry_backoff") == "delayed_plugins.retry_policy"


def test_a_bad_declaration_or_a_failing_hook_is_one_line() -> None:
    class BadName:
        @hookimpl
        def delayed_add_settings(self, settings: SettingsRegistry) -> None:
            settings.add(Setting("Bad-Name", int, 1, "x"))

    class Broken:
        @hookimpl
        def delayed_add_settings(self, settings: SettingsRegistry) -> None:
            raise RuntimeError("boom")

    with pytest.raises(ConfigError, match="declares setting 'Bad-Name' badly"):
        load_config(env={}, config_file=ConfigFile(), plugins=[BadName()])
    with pytest.raises(ConfigError, match=r"Broken: delayed_add_settings failed: RuntimeError: boom"):
        load_config(env={}, config_file=ConfigFile(), plugins=[Broken()])


def test_the_shipped_plugins_own_their_settings() -> None:
    config = load_config(env={}, config_file=ConfigFile(), plugins=["delayed_plugins.metrics"])
    owners = {name: config.settings.owner(name) for name in config.settings.names()}
    assert owners["max_tasks_per_child"] == owners["max_memory_per_child"] == "delayed_plugins.executors.plugin"
    assert owners["retry_backoff"] == owners["retry_backoff_max"] == "delayed_plugins.retry_policy"
    assert owners["metrics_port"] == "delayed_plugins.metrics"
    assert owners["wait_replicas"] == owners["replica_wait_timeout"] == "delayed_redis.plugin"
    assert {name for name, owner in owners.items() if owner == ""} >= {"broker_url", "plugins", "log_format"}
    assert config.settings.get("max_tasks_per_child") is MAX_TASKS_PER_CHILD


def test_queues_of_one_worker_must_agree_on_the_settings_of_its_executor(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("delayed.toml").write_text("[queues.media]\nmax_tasks_per_child = 5\n")
    app = Delayed("memory://executor-settings", load_entry_points=False)
    with pytest.raises(ConfigError, match="'default' and 'media' set max_tasks_per_child differently"):
        app.worker(["default", "media"])


# -- resolving where the task runs -------------------------------------------------------------------
def test_the_allowed_check_never_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "never_imported_probe.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FunctionRegistry(allow_any_import=True)
    registry.check_allowed("never_imported_probe:f")
    assert "never_imported_probe" not in sys.modules
    assert registry.resolve("never_imported_probe:f")() == 1  # where the task runs
    with pytest.raises(TaskNotAllowed, match="is not a 'module:function' path"):
        registry.check_allowed("no-colon")
    with pytest.raises(TaskNotAllowed, match="is not an allowed function"):
        FunctionRegistry().check_allowed("never_imported_probe:f")


@pytest.mark.parametrize("executor", ["thread", "asyncio"])
def test_a_function_that_cannot_be_imported_where_it_runs_fails_without_retry(executor: str) -> None:
    app = Delayed(f"memory://unimportable-{executor}", allow_any_import=True, load_entry_points=False,
                  executor=executor, dequeue_timeout=0.2)
    app.queue().enqueue(PyTask("no_such_module_probe:f", retry=3))
    app.worker().run(burst=True, install_signals=False)
    (raw,) = app.broker("default").dead_letters()
    letter = DeadLetter.from_json(raw)
    assert (letter.reason, letter.attempts) == ("failed", 1)  # not retried: the same setup fails the same way
    assert "no_such_module_probe:f cannot be imported" in letter.error
