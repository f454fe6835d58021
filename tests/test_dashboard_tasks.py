"""The dashboard's task page in-process (Starlette's test client), on fakeredis and a real Redis: look a
tracked task up by id, see its result or error escaped, cancel it (token + CSRF; 403 when read-only)."""

from __future__ import annotations

import re

from delayed_core import Delayed
from tests import handle_tasks
from tests.conftest import Backend
from tests.test_dashboard_app import TOKEN, XSS, client_for
from tests.test_handles import SETTINGS, bound, drain


def app_with_tasks(backend: Backend) -> tuple[Delayed, dict[str, str]]:
    """A succeeded task returning hostile text, a dead one failing with it, and a queued one."""
    app = backend.app(**SETTINGS)
    done = bound(app, handle_tasks.add).delay(XSS, "!")
    failed = bound(app, handle_tasks.boom).delay(XSS)
    drain(app)
    queued = bound(app, handle_tasks.add).delay(1, 2)
    return app, {"done": done.id, "failed": failed.id, "queued": queued.id}


def test_task_page_shows_the_record_escaped(backend: Backend) -> None:
    app, ids = app_with_tasks(backend)
    client = client_for(app)
    html = client.get("/tasks", params={"id": ids["done"]}).text
    assert 'id="status">succeeded<' in html and "tests.handle_tasks:add" in html and XSS not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;!" in html and 'aria-current="page">Tasks' in html
    html = client.get("/tasks", params={"id": ids["failed"]}).text
    assert 'id="status">dead<' in html and "ValueError: &lt;script&gt;" in html and 'id="traceback"' in html
    assert XSS not in html
    html = client.get("/tasks", params={"id": ids["queued"]}).text
    assert 'id="status">queued<' in html
    assert "unknown" in client.get("/tasks", params={"id": "no-such-task"}).text
    bad = client.get("/tasks", params={"id": "x" * 300}).text
    assert 'id="problem"' in bad and "printable string" in bad
    assert 'id="task-id"' in client.get("/tasks").text  # the search box, nothing looked up


def test_cancel_from_the_task_page(backend: Backend) -> None:
    app, ids = app_with_tasks(backend)
    client = client_for(app)
    assert 'id="cancel"' not in client.get("/tasks", params={"id": ids["queued"]}).text  # not signed in
    assert client.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
    page = client.get("/tasks", params={"id": ids["queued"]}).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    assert 'id="cancel"' in page and 'id="cancel"' not in client.get("/tasks", params={"id": ids["done"]}).text
    assert client.post("/tasks/cancel", data={"id": ids["queued"]}).status_code == 403  # no CSRF value
    response = client.post("/tasks/cancel", data={"id": ids["queued"], "csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/tasks?id={ids['queued']}&done=cancelled"
    assert app.handle(ids["queued"]).status() == "cancelled" and len(app.queue("default")) == 0
    html = client.get(response.headers["location"]).text
    assert 'id="notice">Cancelled' in html and 'id="status">cancelled<' in html
    again = client.post("/tasks/cancel", data={"id": ids["done"], "csrf": csrf}, follow_redirects=False)
    assert again.headers["location"].endswith("done=not-cancelled")
    assert client.post("/tasks/cancel", data={"id": "", "csrf": csrf}).status_code == 400


def test_read_only_dashboard_refuses_cancel(backend: Backend) -> None:
    app, ids = app_with_tasks(backend)
    client = client_for(app, read_only=True)
    assert 'id="cancel"' not in client.get("/tasks", params={"id": ids["queued"]}).text
    response = client.post("/tasks/cancel", data={"id": ids["queued"]})
    assert response.status_code == 403 and "read-only" in response.text
    assert app.handle(ids["queued"]).status() == "queued"
    assert re.search(r'id="status">queued<', client.get("/tasks", params={"id": ids["queued"]}).text)
