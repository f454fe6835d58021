"""The README's and the getting-started guide's examples run for real, so they cannot rot.

The quick starts are run the way a user runs them: files written to a fresh folder, then ``python`` and
the installed ``delayed`` command started there, with no PYTHONPATH, against the test's redis-server.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import textwrap
from pathlib import Path

from delayed_core import PyTask
from tests.chaos.processes import poll
from tests.conftest import Backend
from tests.support import cli
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
#: the broker URL the docs use; tests point it at their own redis-server
README_URL = "redis://localhost:6379/0"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text."""
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]


def bash_blocks(text: str) -> list[str]:
    """The ```bash fenced blocks of a Markdown text."""
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def shell_lines(block: str) -> list[str]:
    """The commands of a bash block, without trailing comments or blank lines."""
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_batch_and_go_examples_enqueue_what_they_say(real_backend: Backend) -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3
    url = real_backend.url
    client = real_backend.client
    exec(compile(blocks[1].replace(README_URL, url), "README batch", "exec"), {})
    assert client.llen("default") == 1 + 10_000
    assert b"tasks:resize" in client.lindex("default", 0)
    exec(compile(blocks[2].replace(README_URL, url), "README Go", "exec"), {})
    assert client.lrange("go-jobs", 0, -1) == [bytes.fromhex("92a76d61696e2e6632c40992019201a474657374")]


# -- the first hour, run as a user runs it ----------------------------------------------------------
def test_readme_quick_start_runs_verbatim(real_redis: RedisServer, tmp_path: Path) -> None:
    """The README quick start, written to a folder and run from it with the installed commands."""
    readme = README.read_text()
    url = real_redis.url
    source = python_blocks(readme)[0]
    assert source.startswith("# tasks.py\n")
    (tmp_path / "tasks.py").write_text(source.replace(README_URL, url))
    (block,) = [block for block in bash_blocks(readme) if "python tasks.py" in block]
    commands = [line.replace(README_URL, url) for line in shell_lines(block)]
    assert commands[0] == "python tasks.py"
    assert [line.split()[:2] for line in commands[1:]] == [["delayed", "worker"], ["delayed", "sweeper"],
                                                          ["delayed", "info"]]
    done = tmp_path / "resized.txt"
    client = real_redis.client()

    produced = cli.python("tasks.py", cwd=tmp_path)
    assert produced.returncode == 0, produced.stderr
    assert done.read_text() == "image 1 resized to 800px\n"  # resize(1) ran in the script itself
    # Regression: the tasks used to be named __main__:resize, which no worker can run.
    assert [raw for raw in client.lrange("default", 0, -1) if b"tasks:resize" in raw] == client.lrange(
        "default", 0, -1)
    assert client.llen("default") == 1 and client.zcard("default_scheduled") == 1

    burst = cli.delayed("worker", "--broker", url, "--import", "tasks", "--burst", cwd=tmp_path)
    assert burst.returncode == 0, burst.stderr
    assert done.read_text().splitlines() == ["image 1 resized to 800px", "image 2 resized to 64px"]
    assert client.llen("default") == 0 and client.zcard("default_scheduled") == 1

    # The README's own worker command (it runs until stopped) runs the scheduled task when it is due.
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([cli.DELAYED, *commands[1].split()[1:]], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT, env=cli.user_environment())
    try:
        poll(lambda: "image 3" in done.read_text(), 20, message=f"the scheduled task; log: {log.read_text()}")
        poll(lambda: client.hlen("default_processing") == 0, 5, message="its release")
        sweeper = cli.delayed(*commands[2].split("#")[0].split()[1:], "--once", cwd=tmp_path)
        assert sweeper.returncode == 0, sweeper.stderr
        assert sweeper.stdout == "default: requeued 0, poisoned 0, notifications +0, promoted 0\n"
        info = cli.delayed(*commands[3].split()[1:], cwd=tmp_path)
        assert info.returncode == 0, info.stderr
        assert "queue default: 0 waiting, 0 scheduled, 0 processing, 0 dead, 4 live worker(s)" in info.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, log.read_text()
    assert done.read_text().splitlines() == ["image 1 resized to 800px", "image 2 resized to 64px",
                                             "image 3 resized to 800px"]
    assert client.llen("default_dead") == 0
    assert "Traceback" not in log.read_text()


def test_getting_started_runs_as_written(real_redis: RedisServer, tmp_path: Path) -> None:
    """Every example of docs/getting-started.md: its files written as named, its commands run in order
    (long-running ones with --burst or --once), against the test's redis-server via DELAYED_BROKER_URL."""
    text = GETTING_STARTED.read_text()
    for block in python_blocks(text):
        name = block.splitlines()[0].removeprefix("# ").split(":")[0]
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(block)
    assert (tmp_path / "myapp" / "tasks.py").is_file() and (tmp_path / "enqueue.py").is_file()
    env = {"DELAYED_BROKER_URL": real_redis.url}
    client = real_redis.client()

    produced = cli.python("enqueue.py", cwd=tmp_path, env=env)
    assert produced.returncode == 0, produced.stderr
    assert client.llen("default") == 1 and client.llen("media") == 1

    outputs = {}
    for line in [line for block in bash_blocks(text) for line in shell_lines(block)]:
        words = line.split()
        if words[0].endswith("/delayed"):
            words[0] = "delayed"
        if words[0] != "delayed":
            continue  # the venv and pip lines: the test runs in that environment already
        if words[1] == "worker":
            words.append("--burst")
        if words[1] == "sweeper":
            words.append("--once")
        result = cli.delayed(*words[1:], cwd=tmp_path, env=env)
        assert result.returncode == 0, (line, result.stderr)
        assert "Traceback" not in result.stderr
        outputs[" ".join(words[1:3])] = result.stdout
    assert (tmp_path / "welcome.log").read_text() == "welcome, user 7\n"
    assert (tmp_path / "transcode.log").read_text() == "video 9 transcoded to 1080p\n"
    assert set(outputs) == {"demo", "worker --import", "sweeper --queue", "info", "dead list", "config"}
    assert "summary" in outputs["demo"]
    assert "queue 'media' has no dead letters" in outputs["dead list"]
    # Both queues are empty now, so info finds none in Redis and shows the configured one.
    assert outputs["info"].startswith("queue default: 0 waiting, 0 scheduled, 0 processing, 0 dead")
    assert f"broker_url            {real_redis.url}" in outputs["config"]
    assert client.llen("default_dead") == client.llen("media_dead") == 0


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
