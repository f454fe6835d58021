"""``fn.delay_async()`` as a user runs it: a FastAPI-style coroutine in a script enqueues through the
running event loop, ``delayed worker`` runs the tasks, and the handles give the results, all as
subprocesses on a real redis-server."""

from __future__ import annotations

import textwrap
from pathlib import Path

from delayed_core.testing.processes import Process, wait_until
from tests.support import cli
from tests.support.redis_server import RedisServer

TASKS = textwrap.dedent('''
    import os
    from pathlib import Path

    from delayed_core import Delayed

    app = Delayed(os.environ["DELAYED_BROKER_URL"])


    @app.task
    def add(a, b):
        return a + b


    @app.task(result_ttl=0)
    def note(path, text):
        Path(path).write_text(text)
''')

PRODUCER = textwrap.dedent('''
    import asyncio
    import datetime
    import sys

    from tasks import add, app, note


    async def handler(n):
        """What a web handler does: enqueue without blocking the loop, answer with the id."""
        handle = await add.delay_async(n, n)
        return handle.id


    async def main():
        ids = await asyncio.gather(*(handler(n) for n in range(5)))
        results = [await app.handle(task_id).result_async(timeout=20) for task_id in ids]
        later = await add.delay_in_async(0.2, 2, 3)
        due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.1)
        at = await add.delay_at_async(due, 4, 5)
        first = await add.delay_in_async(600, 1, 1, task_id="order-7")
        again = await add.delay_async(9, 9, task_id="order-7")  # pending: the same task, not a second
        untracked = await note.delay_async(sys.argv[1], "written")
        print(results, await later.result_async(timeout=20), await at.result_async(timeout=20))
        print(again.id == first.id, await again.status_async(), untracked)


    asyncio.run(main())
''')


def test_delay_async_from_a_script(real_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "producer.py").write_text(PRODUCER)
    env = {"DELAYED_BROKER_URL": real_redis.url}
    marker = tmp_path / "note.txt"
    worker = Process("worker", ["worker", "--import", "tasks", "--dequeue-timeout", "0.2"], tmp_path, env)
    try:
        result = cli.python("producer.py", str(marker), cwd=tmp_path, env=env)
        assert result.returncode == 0, f"{result.stderr}\n{worker.log()}"
        assert result.stderr == ""
        assert result.stdout.splitlines() == ["[0, 2, 4, 6, 8] 5 9", "True scheduled None"]
        # the untracked task gave no handle, and runs all the same
        assert wait_until(marker.exists, 20), worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
    assert marker.read_text() == "written"
    assert real_redis.client().zcard("default_scheduled") == 1  # order-7 once, not twice
