"""Every hook is documented in docs/hooks.md with its exact signature, and implemented by some test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from delayed_core import Delayed, hookimpl, hookspecs
from delayed_core.registry import ComponentRegistry

ROOT = Path(__file__).resolve().parent.parent
HOOKS = hookspecs.all_hook_names()


def signature_text(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in the docs (annotations without quotes)."""
    spec = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in spec.parameters.values())
    return f"{name}({params}) -> {spec.return_annotation}"


def doc_sections() -> dict[str, str]:
    """docs/hooks.md split at ``## <name>`` headings."""
    text = (ROOT / "docs" / "hooks.md").read_text()
    parts = re.split(r"^## (\S+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_hook_is_collected() -> None:
    assert len(HOOKS) >= 15 and "delayed_retry_delay" in HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_exact_signature(name: str) -> None:
    section = doc_sections().get(name)
    assert section is not None, f"docs/hooks.md has no '## {name}' section"
    assert signature_text(name) in section, f"docs/hooks.md: {name} must show `{signature_text(name)}`"
    assert "Runs in:" in section, f"docs/hooks.md: {name} must say which process it runs in"
    assert "@hookimpl" in section, f"docs/hooks.md: {name} needs an example"


def test_docs_describe_no_hook_that_does_not_exist() -> None:
    assert sorted(doc_sections()) == sorted(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_implemented_by_a_test(name: str) -> None:
    pattern = re.compile(rf"def {name}\(")
    implemented = [path for path in (ROOT / "tests").rglob("*.py") if pattern.search(path.read_text())]
    assert implemented, f"no test implements {name}: add one (a plugin with `def {name}(...)`)"


def test_app_created_fires_once_with_config_and_components_ready() -> None:
    seen: list[tuple[str, list[str]]] = []

    class Probe:
        @hookimpl
        def delayed_register_components(self, registry: ComponentRegistry) -> None:
            seen.append(("registered", []))

        @hookimpl
        def delayed_app_created(self, app: Delayed) -> None:
            seen.append((app.config["queue"], app.registry.names("executor")))

    Delayed("memory://hooks-doc", plugins=[Probe()], load_entry_points=False, queue="jobs")
    assert seen[0] == ("registered", [])
    assert len(seen) == 2 and seen[1][0] == "jobs" and "thread" in seen[1][1]
