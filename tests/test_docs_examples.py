"""The README's Python examples run for real (against the test redis-server), so they cannot rot."""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from tests.conftest import Backend

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text."""
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]


def test_readme_examples_enqueue_what_they_say(real_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3
    url = real_backend.url
    # The quick start as a module named "tasks", the way the README's worker command imports it.
    tasks = types.ModuleType("tasks")
    monkeypatch.setitem(sys.modules, "tasks", tasks)
    exec(compile(blocks[0].replace("redis://localhost:6379/0", url).replace('__name__ == "__main__"', "True"),
                 "README quick start", "exec"), tasks.__dict__)
    client = real_backend.client
    assert client.llen("default") == 1 and client.zcard("default_scheduled") == 1
    exec(compile(blocks[1].replace("redis://localhost:6379/0", url), "README batch", "exec"), {})
    assert client.llen("default") == 1 + 1 + 10_000
    exec(compile(blocks[2].replace("redis://localhost:6379/0", url), "README Go", "exec"), {})
    assert client.lrange("go-jobs", 0, -1) == [bytes.fromhex("92a76d61696e2e6632c40992019201a474657374")]

    # And a worker that imports "tasks" runs them.
    worker_app = Delayed(url, imports=["tasks"], dequeue_timeout=0.2, load_entry_points=False)
    worker_app.worker().run(burst=True, install_signals=False)
    assert client.llen("default") == 0 and client.llen("default_dead") == 0


def test_async_queue_enqueues_the_same_bytes(real_backend: Backend) -> None:
    app = real_backend.app()

    async def produce() -> int:
        queue = app.async_queue("aq")
        await queue.enqueue(PyTask("tests.worker_tasks:record", [1], {"a": 2}))
        await queue.enqueue_many([PyTask("tests.worker_tasks:record", [i]) for i in range(3)])
        await queue.enqueue(PyTask("tests.worker_tasks:record", [9]), delay=30)
        length = await queue.length()
        await queue.close()
        return length

    assert asyncio.run(produce()) == 4
    client = real_backend.client
    assert client.lindex("aq", 0) == app.serializer.dumps(PyTask("tests.worker_tasks:record", [1], {"a": 2}))
    assert client.llen("aq_noti") == 4 and client.zcard("aq_scheduled") == 1
