"""The dashboard in a real headless Chromium, against a real redis-server, a ``delayed worker`` and a
``delayed dashboard`` run as subprocesses from a fresh folder, as a user runs them.

Chromium is Debian's (``apt-get install chromium``, see .ci/run), driven by Playwright through
``executable_path``: Playwright never downloads a browser here. Set ``UPDATE_DASHBOARD_SCREENSHOT=1`` to
write the overview's screenshot to docs/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Page, sync_playwright

from delayed_core import DeadLetter, Delayed, PyTask
from tests.support.cli import DELAYED, user_environment
from tests.support.redis_server import RedisServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[1] / "docs"
TOKEN = "browser-test-token"
XSS = '<script>alert("xss")</script><img src=x onerror=alert(2)>'

pytestmark = [
    pytest.mark.real_redis,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                       reason="Debian's chromium is not installed (CI installs it)"),
]

TASKS = textwrap.dedent('''
    """Tasks of the browser test."""
    import os
    import time


    def ok(n):
        return n


    def fail(n):
        raise ValueError(f"bad input {n}")


    def flaky(marker, ok_file):
        if not os.path.exists(ok_file):
            raise RuntimeError("the backend is down")
        with open(marker, "w") as out:
            out.write("ran")


    def block(note, stop_file):
        deadline = time.time() + 60
        while not os.path.exists(stop_file) and time.time() < deadline:
            time.sleep(0.05)
''')


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def started(command: list[str], folder: Path, log: Path, marker: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start ``command`` in ``folder``, its stderr going to ``log`` (a file, so that a chatty process can
    never fill a pipe and stall); wait until a line containing ``marker`` was written. Return the process
    and the lines up to that one."""
    with log.open("wb") as err:
        process = subprocess.Popen(command, cwd=folder, env=user_environment(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err)

    def printed() -> list[str] | None:
        lines = log.read_text(errors="replace").splitlines(keepends=True)
        for i, line in enumerate(lines):
            if marker in line and line.endswith("\n"):
                return lines[: i + 1]
        if process.poll() is not None:
            raise AssertionError(f"{command[1]} exited with {process.returncode}: {''.join(lines)}")
        return None

    try:
        return process, wait_for(printed, f"{marker!r} from {command[1]}", timeout=30)
    except BaseException:
        stop(process)  # never leave it running when the test cannot use it
        raise


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Site:
    """A running worker + dashboard over one redis-server, and what the browser saw."""

    def __init__(self, server: RedisServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.client: redis.Redis = server.client()
        self.app = Delayed(server.url, load_entry_points=False)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = ""
        self.problems: list[str] = []  # console errors, page errors and dialogs: all must stay empty

    def spawn(self, *args: str, marker: str) -> tuple[subprocess.Popen[bytes], list[str]]:
        """``delayed ARGS``, once it printed ``marker``."""
        process, lines = started([DELAYED, *args], self.folder, self.folder / f"{args[0]}.log", marker)
        self.processes.append(process)
        return process, lines

    def enqueue(self, queue: str, func: str, *args: object) -> bytes:
        raw = self.app.serializer.dumps(PyTask(f"dash_tasks:{func}", list(args)))
        self.app.broker(queue).enqueue([raw])
        return raw

    def watch(self, page: Page) -> Page:
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

        def on_dialog(dialog: Any) -> None:
            self.problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    def redis_counts(self, queue: str) -> dict[str, str]:
        """What the overview must show for ``queue``, read straight from Redis."""
        registered = [member.decode() for member in self.client.zrange(f"{queue}_workers", 0, -1)]
        return {
            "waiting": str(self.client.llen(queue)),
            "scheduled": str(self.client.zcard(f"{queue}_scheduled")),
            "processing": str(self.client.hlen(f"{queue}_processing")),
            "dead": str(self.client.llen(f"{queue}_dead")),
            "workers": str(sum(1 for worker_id in registered if self.client.exists(worker_id))),
        }


def page_counts(page: Page, queue: str) -> dict[str, str]:
    row = page.locator(f'tr[data-queue="{queue}"]')
    return {field: row.locator(f'[data-field="{field}"]').inner_text().strip()
            for field in ("waiting", "scheduled", "processing", "dead", "workers")}


@pytest.fixture
def site(real_redis: RedisServer, tmp_path: Path) -> Iterator[Site]:
    (tmp_path / "dash_tasks.py").write_text(TASKS)
    running = Site(real_redis, tmp_path)
    try:
        yield running
    finally:
        (tmp_path / "stop").write_text("")
        for process in running.processes:
            stop(process)


def test_dashboard_in_a_real_browser(site: Site, browser: Browser, tmp_path: Path) -> None:
    # A worker on "work" (2 slots) that dead-letters a failing task and then holds a blocking one.
    worker, _ = site.spawn("worker", "--broker", site.server.url, "--queue", "work", "--slots", "2",
                           "--import", "dash_tasks", "--dequeue-timeout", "0.5", marker="serving")
    for n in range(12):
        site.enqueue("work", "ok", n)
    for n in range(3):
        site.enqueue("work", "fail", n)
    marker, ok_file = tmp_path / "requeued-task-ran", tmp_path / "backend-is-up"
    site.enqueue("work", "flaky", str(marker), str(ok_file))
    wait_for(lambda: site.client.llen("work_dead") == 4, "four dead letters on 'work'")
    site.enqueue("work", "block", XSS, str(tmp_path / "stop"))
    wait_for(lambda: site.client.hlen("work_processing") == 1, "the blocking task to be held")

    # A queue nobody serves: its numbers stand still while the page is compared with Redis.
    for n in range(5):
        site.enqueue("idle", "ok", n)
    site.app.broker("idle").schedule([site.app.serializer.dumps(PyTask("dash_tasks:ok", [7]))] * 3,
                                     due=time.time() + 3600)
    for reason in ("not_allowed", "undecodable"):
        site.app.broker("idle").dead_letter(None, DeadLetter(
            task=site.app.serializer.dumps(PyTask("dash_tasks:ok", [XSS])), reason=reason, error=f"E: {XSS}",
            func="dash_tasks:ok", queue="idle").to_json())

    _, lines = site.spawn("dashboard", "--broker", site.server.url, "--port", "0", "--token", TOKEN,
                          marker="serving")
    line = lines[-1]
    site.url = line.split(" at ")[1].split()[0].rstrip("/")
    page = site.watch(browser.new_page(viewport={"width": 1280, "height": 560}))

    # Overview: the numbers match Redis (polled: the page refreshes itself every 2 s).
    page.goto(site.url + "/")
    for queue in ("idle", "work"):
        wait_for(lambda q=queue: page_counts(page, q) == site.redis_counts(q),
                 f"the overview of {queue!r} to match Redis")
    assert page_counts(page, "work")["workers"] == "2" and page_counts(page, "work")["processing"] == "1"
    # The chart's totals are the counters the release and dead-letter scripts kept: 12 done, 4 failed.
    counters = {key.decode(): int(value) for key, value in site.client.hgetall("work_throughput").items()}
    assert sum(v for k, v in counters.items() if k.startswith("d:")) == 12
    assert sum(v for k, v in counters.items() if k.startswith("f:")) == 4
    row = page.locator('tr[data-queue="work"]')
    assert (row.locator('[data-field="done"]').inner_text(), row.locator('[data-field="failed"]').inner_text()) == \
        ("12", "4")
    assert page_counts(page, "idle") == {"waiting": "5", "scheduled": "3", "processing": "0", "dead": "2",
                                         "workers": "0"}
    updated = page.locator("#live").get_attribute("data-updated")
    wait_for(lambda: page.locator("#live").get_attribute("data-updated") != updated, "a live refresh")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot))
    if os.environ.get("UPDATE_DASHBOARD_SCREENSHOT") == "1":
        shutil.copy(shot, DOCS / "dashboard.png")

    # Workers: who runs what, with the hostile argument shown as text.
    page.goto(site.url + "/workers")
    row = page.locator("tr", has_text="dash_tasks:block")
    assert str(worker.pid) in row.inner_text()
    assert XSS in row.locator("td.task").inner_text()
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.alert") == "function"  # untouched; a run alert would be a dialog

    # Dead letters, escaped; an action without the token is refused with 403.
    page.goto(site.url + "/dead?queue=idle")
    assert page.locator("td.error").all_inner_texts() == [f"E: {XSS}"] * 2
    assert all(XSS in text for text in page.locator("td.task").all_inner_texts())
    assert page.locator("img").count() == 0
    assert page.locator("button.requeue").count() == 0  # not signed in: no action offered
    for action, form in (("requeue", {"queue": "work", "index": "0", "digest": "0"}),
                         ("purge-all", {"queue": "idle", "confirm": "yes"})):
        assert page.request.post(f"{site.url}/actions/{action}", form=form).status == 403
        assert page.request.post(f"{site.url}/actions/{action}", form=form,
                                 headers={"Authorization": "Bearer wrong"}).status == 403
    assert site.client.llen("idle_dead") == 2

    # Sign in with the token, press requeue on the flaky task's letter, and see the task run.
    page.goto(site.url + "/login")
    page.fill("input[name=token]", TOKEN)
    page.click("#login button")
    assert page.locator("#notice").inner_text().startswith("Signed in")
    ok_file.write_text("")
    page.goto(site.url + "/dead?queue=work&func=flaky")
    page.locator("tr", has_text="dash_tasks:flaky").locator("button.requeue").click()
    assert page.locator("#notice").inner_text().startswith("Requeued")
    wait_for(marker.exists, "the requeued task to run")
    assert site.client.llen("work_dead") == 3

    # Tasks: look tracked tasks up through the search box; results and errors shown as text; cancel one
    # the worker runs (the thread executor raises into its Python loop).
    work = site.app.queue("work")
    done = work.enqueue(PyTask("dash_tasks:ok", [XSS]), track=True)
    failed = work.enqueue(PyTask("dash_tasks:fail", [XSS]), track=True)
    assert done is not None and failed is not None and done.result(timeout=15) == XSS
    wait_for(lambda: failed.status() == "dead", "the tracked failing task to be dead")
    page.goto(site.url + "/")
    page.click("nav >> text=Tasks")
    page.fill("#task-id", done.id)
    page.click("#look-up")
    assert page.locator("#status").inner_text() == "succeeded"
    assert page.locator("#result").inner_text() == repr(XSS)
    page.fill("#task-id", failed.id)
    page.click("#look-up")
    assert (page.locator("#status").inner_text(), page.locator("#error").inner_text()) == \
        ("dead", f"ValueError: bad input {XSS}")
    assert "raise ValueError" in page.locator("#traceback").inner_text()
    assert page.locator("img").count() == 0 and page.locator("#cancel").count() == 0
    running = work.enqueue(PyTask("dash_tasks:block", ["cancel me", str(tmp_path / "never")]), track=True)
    assert running is not None
    wait_for(lambda: running.status() == "running", "the tracked blocking task to run")
    page.fill("#task-id", running.id)
    page.click("#look-up")
    assert page.locator("#status").inner_text() == "running"
    page.click("#cancel")
    assert page.locator("#notice").inner_text().startswith("Cancelled")
    assert page.locator("#status").inner_text() == "cancelled" and running.status() == "cancelled"

    assert site.problems == []
