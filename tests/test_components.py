"""Component registry, plugin loading and the function allowlist."""

from __future__ import annotations

import pytest

from delayed_core import ConfigError, Delayed, TaskNotAllowed, hookimpl
from delayed_core.functions import FunctionRegistry
from delayed_core.interfaces import Serializer
from delayed_core.notify import Notifier
from delayed_core.plugins import make_plugin_manager
from delayed_core.registry import ComponentRegistry


def test_unknown_component_lists_valid_names_and_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown executor 'thred' \(did you mean 'thread'\?\); valid: .*thread"):
        Delayed("memory://x", executor="thred", load_entry_points=False)


def test_dotted_path_escape_hatch_checks_the_interface() -> None:
    registry = ComponentRegistry()
    cls = registry.get("serializer", "delayed_plugins.msgpack_serializer:MsgpackSerializer")
    assert issubclass(cls, Serializer)
    with pytest.raises(ConfigError, match="is not a Serializer"):
        registry.get("serializer", "delayed_core.task:PyTask")
    with pytest.raises(ConfigError, match="cannot load"):
        registry.get("serializer", "no_such_module:Thing")


def test_a_component_registered_by_path_is_imported_when_first_picked() -> None:
    registry = ComponentRegistry()
    registry.add_serializer("msgpack", "delayed_plugins.msgpack_serializer:MsgpackSerializer")
    registry.add_serializer("ghost", "no_such_module:Thing")
    registry.add_serializer("task", "delayed_core.task:PyTask")
    for name in ("msgpack", "ghost", "task"):
        registry.check("serializer", name)  # known names: nothing imported yet
    assert issubclass(registry.get("serializer", "msgpack"), Serializer)
    with pytest.raises(ConfigError, match="cannot load serializer 'no_such_module:Thing'"):
        registry.get("serializer", "ghost")
    with pytest.raises(ConfigError, match="is not a Serializer"):
        registry.get("serializer", "task")
    with pytest.raises(ConfigError, match="unknown serializer 'nope'"):
        registry.check("serializer", "nope")
    with pytest.raises(TypeError):
        registry.add_serializer("bad", "no_colon")


def test_registry_refuses_a_class_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError):
        ComponentRegistry().add_executor("bad", int)


def test_misspelt_hook_fails_at_start_up() -> None:
    class Typo:
        @hookimpl
        def delayed_task_succeded(self, queue, task, worker_id, outcome):
            pass

    with pytest.raises(ConfigError, match="delayed_task_succeded"):
        make_plugin_manager([Typo()], load_entry_points=False)


def test_disable_plugins_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELAYED_DISABLE_PLUGINS", "delayed_plugins.memory_broker")
    pm = make_plugin_manager(load_entry_points=False)
    assert pm.get_plugin("delayed_plugins.memory_broker") is None
    with pytest.raises(ConfigError, match="unknown broker 'memory'"):
        Delayed("memory://x", load_entry_points=False)


def test_plugin_named_by_module_is_loaded() -> None:
    app = Delayed("memory://x", plugins=["tests.support.fake_broker"], load_entry_points=False)
    assert app.plugin_manager.get_plugin("tests.support.fake_broker") is not None


def test_missing_plugin_module_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"cannot import plugin 'nope\.nothing'"):
        make_plugin_manager(["nope.nothing"], load_entry_points=False)


def test_notification_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def delayed_task_enqueued(self, queue, task):
            raise RuntimeError("metrics backend down")

    pm = make_plugin_manager([Broken()], load_entry_points=False)
    notifier = Notifier(pm)
    assert notifier.has("delayed_task_enqueued") and not notifier.has("delayed_task_started")
    notifier.delayed_task_enqueued(queue="q", task=None)  # type: ignore[arg-type]
    assert "delayed_task_enqueued failed" in caplog.text


class TestFunctionRegistry:
    def test_registered_function_resolves(self) -> None:
        registry = FunctionRegistry()
        path = registry.register(len, "builtins:len")
        assert registry.resolve(path) is len

    def test_module_functions_are_allowed_but_not_imported_names_or_private_ones(self) -> None:
        registry = FunctionRegistry()
        registry.allow_module("tests.support.allowed_module")
        assert registry.resolve("tests.support.allowed_module:double")(2) == 4
        for path in ("tests.support.allowed_module:system", "tests.support.allowed_module:_private",
                     "tests.support.allowed_module:CONSTANT", "os:system", "builtins:eval"):
            with pytest.raises(TaskNotAllowed):
                registry.resolve(path)

    def test_bad_path_shapes(self) -> None:
        registry = FunctionRegistry()
        for path in ("os.system", ":f", "mod:", ""):
            with pytest.raises(TaskNotAllowed, match="not a 'module:function' path"):
                registry.resolve(path)

    def test_allow_any_import_is_an_explicit_escape_hatch(self) -> None:
        registry = FunctionRegistry(allow_any_import=True)
        assert registry.resolve("os.path:join")("a", "b") == "a/b"
        with pytest.raises(TaskNotAllowed, match="cannot be imported"):
            registry.resolve("no_such_module_here:f")

    def test_unknown_import_module_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="cannot import 'no_such_module_here'"):
            FunctionRegistry().allow_module("no_such_module_here")
