"""docs/extending.md runs as written: the inline executor, and the JSON serializer on the memory broker
and, the way a user runs it (files in a fresh folder, ``python`` and the installed ``delayed`` command),
on a real redis-server."""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from delayed_core import Delayed, PyTask
from delayed_core.deadletter import DeadLetter
from delayed_core.errors import TaskDecodeError
from delayed_core.interfaces import Broker
from tests.support import cli
from tests.support.redis_server import RedisServer

EXTENDING = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
DOC_URL = "redis://localhost:6379/0"  # the broker URL the doc uses; tests point it at their own


def fenced(language: str) -> list[str]:
    """The fenced blocks of one language in docs/extending.md."""
    return re.findall(rf"```{language}\n(.*?)```", EXTENDING.read_text(), re.S)


def doc_file(name: str) -> str:
    """The block of the doc that starts with ``# <name>`` (a file the reader is asked to write)."""
    (block,) = [block for language in ("python", "toml") for block in fenced(language)
                if block.startswith(f"# {name}\n")]
    return block


def write_example(folder: Path, url: str) -> None:
    """The serializer plugin, the config and the tasks module, as the doc names them."""
    for name in ("json_serializer.py", "delayed.toml", "tasks.py"):
        (folder / name).write_text(doc_file(name).replace(DOC_URL, url))


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example's files in a folder that is the working directory and on the import path."""
    write_example(tmp_path, "memory://extending")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("json_serializer", "tasks", "inline_executor", "jobs"):
        sys.modules.pop(module, None)


def test_json_serializer_round_trips_and_refuses_what_it_cannot_read(example: Path) -> None:
    serializer = importlib.import_module("json_serializer").JsonSerializer()
    task = PyTask("tasks:greet", ["json"], {"loud": True}, retry=2, meta={"attempt": 1})
    data = serializer.dumps(task)
    assert json.loads(data) == {"func": "tasks:greet", "args": ["json"], "kwargs": {"loud": True}, "retry": 2,
                                "meta": {"attempt": 1}}
    assert serializer.loads(data) == task
    for garbage, reason in ((b"\x93\x01", "not a JSON task: UnicodeDecodeError"),
                            (b'{"func": "tasks:greet"}', "not a JSON task: KeyError: 'args'"),
                            (b'{"func": 7, "args": [], "kwargs": {}, "retry": 0, "meta": {}}',
                             "not a JSON task: TypeError: func must be a callable")):
        with pytest.raises(TaskDecodeError) as caught:
            serializer.loads(garbage)
        assert str(caught.value).startswith(reason)
        assert "\n" not in str(caught.value)


def test_a_worker_runs_a_task_through_it_on_the_memory_broker(example: Path) -> None:
    tasks = importlib.import_module("tasks")
    app: Delayed = tasks.app
    assert type(app.serializer).__name__ == "JsonSerializer"  # chosen by delayed.toml, through the plugin
    tasks.greet.delay("json")
    broker = app.broker("default")
    broker.enqueue([b'{"func": "tasks:greet"}'])  # a task the serializer cannot read
    app.worker("default").run(burst=True, install_signals=False)
    assert (example / "greeted.txt").read_text() == "hello json\n"
    (entry,) = broker.dead_letters()
    letter = DeadLetter.from_json(entry)
    assert (letter.reason, letter.error, letter.task) == ("undecodable", "not a JSON task: KeyError: 'args'",
                                                          b'{"func": "tasks:greet"}')
    assert len(broker) == 0


def test_the_example_runs_as_a_user_runs_it_on_redis(real_redis: RedisServer, tmp_path: Path) -> None:
    write_example(tmp_path, real_redis.url)
    client = real_redis.client()
    (commands,) = [[line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
                   for block in fenced("bash") if "python tasks.py" in block]
    assert commands == ["python tasks.py", "delayed worker --import tasks --burst"]

    produced = cli.python("tasks.py", cwd=tmp_path)
    assert produced.returncode == 0, produced.stderr
    assert [json.loads(raw) for raw in client.lrange("default", 0, -1)] == [
        {"func": "tasks:greet", "args": ["json"], "kwargs": {}, "retry": 0, "meta": {}}]

    worker = cli.delayed(*commands[1].split()[1:], cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    assert (tmp_path / "greeted.txt").read_text() == "hello json\n"
    assert client.llen("default") == 0 and client.hlen("default_processing") == 0
    assert client.llen("default_dead") == 0


def test_the_broker_section_lists_what_to_implement() -> None:
    (command,) = [block.strip() for block in fenced("bash") if "__abstractmethods__" in block]
    assert command.startswith('python -c "') and command.endswith('"')
    listed: list[str] = []
    exec(command.removeprefix('python -c "').removesuffix('"').replace("print(", "listed.extend("),
         {"listed": listed})
    assert listed == sorted(Broker.__abstractmethods__) and "enqueue" in listed


def test_the_inline_executor_runs_tasks_and_reports_failures(example: Path) -> None:
    (example / "inline_executor.py").write_text(doc_file("inline_executor.py"))
    (example / "jobs.py").write_text(
        "def write(text):\n    open('inline.txt', 'a').write(text)\n\n"
        "def fail():\n    raise ValueError('bad input')\n\n"
        "async def later():\n    pass\n")
    app = Delayed("memory://inline", plugins=["inline_executor"], executor="inline", imports=["jobs"])
    queue = app.queue("default")
    queue.enqueue_many([PyTask("jobs:write", ["ran inline"]), PyTask("jobs:fail"), PyTask("jobs:later")])
    app.worker("default").run(burst=True, install_signals=False)
    assert (example / "inline.txt").read_text() == "ran inline"
    letters = [DeadLetter.from_json(entry) for entry in app.broker("default").dead_letters()]
    assert sorted((letter.func, letter.reason, letter.error) for letter in letters) == [
        ("jobs:fail", "failed", "ValueError: bad input"),
        ("jobs:later", "failed", "TypeError: the inline executor cannot await a task")]
