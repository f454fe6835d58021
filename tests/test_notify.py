"""The typed notifier: one attribute per notification hook, typed from the hook's spec."""

from __future__ import annotations

import inspect
from typing import Any

import pluggy
import pytest

from delayed_core import hookimpl, hookspecs
from delayed_core.notify import CALLED_DIRECTLY, Notification, Notifier
from delayed_core.plugins import PROJECT_NAME, make_plugin_manager

HOOKS = hookspecs.all_hook_names()
NOTIFICATIONS = [name for name in HOOKS if name not in CALLED_DIRECTLY]


def spec_params(name: str) -> list[tuple[str, Any]]:
    return [(p.name, p.annotation) for p in inspect.signature(getattr(hookspecs, name)).parameters.values()]


def test_every_hook_has_a_typed_attribute_or_a_reason_to_be_called_directly() -> None:
    missing = [name for name in NOTIFICATIONS if name not in vars(Notifier)]
    assert missing == [], (f"add `{missing[0] if missing else ''} = Notification(hookspecs.…)` to Notifier "
                           "(or list the hook, with the reason, in CALLED_DIRECTLY)")
    assert set(CALLED_DIRECTLY) <= set(HOOKS), "CALLED_DIRECTLY names a hook that does not exist"
    assert len(NOTIFICATIONS) == 13


@pytest.mark.parametrize("name", [name for name in NOTIFICATIONS if name != "delayed_task_enqueuing"])
def test_attribute_is_built_from_its_own_spec(name: str) -> None:
    attribute = vars(Notifier)[name]
    assert isinstance(attribute, Notification) and attribute.name == name


def test_enqueuing_method_takes_the_hooks_exact_parameters() -> None:
    params = list(inspect.signature(Notifier.delayed_task_enqueuing).parameters.values())[1:]  # past self
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert [(p.name, p.annotation) for p in params] == spec_params("delayed_task_enqueuing")


class Recorder:
    """Implements every notification hook (taking no arguments: pluggy allows that)."""


def _implementation(name: str) -> Any:
    def implementation(self: Recorder) -> Any:
        return {"answer": name} if name == "delayed_task_enqueuing" else None
    implementation.__name__ = name
    return hookimpl(implementation)


for _name in NOTIFICATIONS:
    setattr(Recorder, _name, _implementation(_name))


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_attribute_fires_its_own_hook_with_every_argument(name: str) -> None:
    pm = make_plugin_manager([Recorder()], load_entry_points=False)
    calls: list[tuple[str, dict[str, Any]]] = []
    pm.add_hookcall_monitoring(lambda hook, _impls, kwargs: calls.append((hook, dict(kwargs))),
                               lambda *_args: None)
    notifier = Notifier(pm)
    kwargs = {arg: object() for arg, _ in spec_params(name)}
    getattr(notifier, name)(**kwargs)
    assert calls == [(name, kwargs)]


def test_enqueuing_answers_are_collected() -> None:
    notifier = Notifier(make_plugin_manager([Recorder()], load_entry_points=False))
    assert notifier.delayed_task_enqueuing(queue="q", task=None) == [  # type: ignore[arg-type]
        {"answer": "delayed_task_enqueuing"}]


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_unimplemented_hook_makes_no_pluggy_call(name: str) -> None:
    bare = pluggy.PluginManager(PROJECT_NAME)  # not even the built-in plugins
    bare.add_hookspecs(hookspecs)
    notifier = Notifier(bare)
    notifier._pm = None  # type: ignore[assignment]  # any pluggy access would now fail
    answer = getattr(notifier, name)(**{arg: None for arg, _ in spec_params(name)})
    assert answer == ([] if name == "delayed_task_enqueuing" else None)


def test_plugin_registered_later_is_fired_after_refresh() -> None:
    pm = make_plugin_manager([], load_entry_points=False)
    notifier = Notifier(pm)
    seen: list[str] = []

    class Late:
        @hookimpl
        def delayed_sweep_finished(self, queue: str) -> None:
            seen.append(queue)

    pm.register(Late())
    notifier.refresh()
    notifier.delayed_sweep_finished(queue="q", report=None)  # type: ignore[arg-type]
    assert seen == ["q"]


def test_misspelled_hook_or_argument_is_an_error_not_silence() -> None:
    notifier = Notifier(make_plugin_manager([Recorder()], load_entry_points=False))
    with pytest.raises(AttributeError):
        notifier.delayed_task_enqueud(queue="q", task=None)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        notifier.delayed_task_enqueued(queue="q", tsk=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="no hook is called 'delayed_task_enqueud'"):
        notifier.has("delayed_task_enqueud")


def test_failing_hooks_are_logged_and_yield_nothing(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def delayed_task_enqueuing(self, queue: str, task: object) -> dict[str, Any]:
            raise RuntimeError("tenant service down")

        @hookimpl
        def delayed_task_started(self, queue: str) -> None:
            raise RuntimeError("metrics backend down")

    notifier = Notifier(make_plugin_manager([Broken()], load_entry_points=False))
    assert notifier.delayed_task_enqueuing(queue="q", task=None) == []  # type: ignore[arg-type]
    notifier.delayed_task_started(queue="q", task=None, worker_id="w")  # type: ignore[arg-type]
    assert "plugin hook delayed_task_enqueuing failed" in caplog.text
    assert "plugin hook delayed_task_started failed" in caplog.text
