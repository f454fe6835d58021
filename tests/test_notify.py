"""The typed notifier: one method per notification hook, with the hook's exact parameters."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from delayed_core import hookimpl, hookspecs
from delayed_core.notify import CALLED_DIRECTLY, Notifier
from delayed_core.plugins import make_plugin_manager

HOOKS = hookspecs.all_hook_names()
NOTIFICATIONS = [name for name in HOOKS if name not in CALLED_DIRECTLY]


def spec_params(name: str) -> list[tuple[str, Any]]:
    return [(p.name, p.annotation) for p in inspect.signature(getattr(hookspecs, name)).parameters.values()]


def method_params(name: str) -> list[tuple[str, Any]]:
    params = list(inspect.signature(getattr(Notifier, name)).parameters.values())[1:]  # past self
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), f"{name}: keyword-only parameters"
    return [(p.name, p.annotation) for p in params]


def test_every_hook_has_a_typed_method_or_a_reason_to_be_called_directly() -> None:
    missing = [name for name in NOTIFICATIONS if not callable(getattr(Notifier, name, None))]
    assert missing == [], f"add a typed method to Notifier for {missing} (or list it in CALLED_DIRECTLY)"
    assert set(CALLED_DIRECTLY) <= set(HOOKS), "CALLED_DIRECTLY names a hook that does not exist"
    assert len(NOTIFICATIONS) == 13


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_typed_method_takes_the_hooks_exact_parameters(name: str) -> None:
    assert method_params(name) == spec_params(name)


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
def test_typed_method_fires_its_own_hook_with_every_argument(name: str) -> None:
    pm = make_plugin_manager([Recorder()], load_entry_points=False)
    calls: list[tuple[str, dict[str, Any]]] = []
    pm.add_hookcall_monitoring(lambda hook, _impls, kwargs: calls.append((hook, dict(kwargs))),
                               lambda *_args: None)
    notifier = Notifier(pm)
    kwargs = {arg: object() for arg, _ in spec_params(name)}
    answer = getattr(notifier, name)(**kwargs)
    assert calls == [(name, kwargs)]
    assert answer == ([{"answer": name}] if name == "delayed_task_enqueuing" else None)


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_unimplemented_hook_makes_no_pluggy_call(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = Notifier(make_plugin_manager([], load_entry_points=False))

    def fail(*_args: Any) -> Any:
        raise AssertionError(f"{name} called pluggy with no implementation")

    monkeypatch.setattr(notifier, "_fire", fail)
    answer = getattr(notifier, name)(**{arg: None for arg, _ in spec_params(name)})
    assert answer == ([] if name == "delayed_task_enqueuing" else None)


def test_misspelled_hook_or_argument_is_an_error_not_silence() -> None:
    notifier = Notifier(make_plugin_manager([Recorder()], load_entry_points=False))
    with pytest.raises(AttributeError):
        notifier.delayed_task_enqueud(queue="q", task=None)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        notifier.delayed_task_enqueued(queue="q", tsk=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="no hook is called 'delayed_task_enqueud'"):
        notifier.has("delayed_task_enqueud")


def test_failing_enqueuing_answer_is_logged_and_yields_nothing(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def delayed_task_enqueuing(self, queue: str, task: object) -> dict[str, Any]:
            raise RuntimeError("tenant service down")

    notifier = Notifier(make_plugin_manager([Broken()], load_entry_points=False))
    assert notifier.delayed_task_enqueuing(queue="q", task=None) == []  # type: ignore[arg-type]
    assert "plugin hook delayed_task_enqueuing failed" in caplog.text
