"""The dashboard's pages and actions in-process (Starlette's test client), on fakeredis and a real Redis.

The browser test (test_dashboard_browser.py) proves the same things through Chromium and subprocesses;
these are the quick, exact checks of each rule.
"""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from delayed_core import DeadLetter, Delayed, PyTask
from delayed_dashboard import create_app
from tests.conftest import Backend

TOKEN = "s3cret-token"
XSS = "<script>window.pwned = 1</script>"


def client_for(app: Delayed, read_only: bool = False, queues: tuple[str, ...] = ()) -> TestClient:
    return TestClient(create_app(app, queues, token=None if read_only else TOKEN, read_only=read_only),
                      base_url="http://127.0.0.1:8000")


def fill(app: Delayed) -> None:
    """jobs: 3 waiting, 2 scheduled, 2 dead (one with a hostile argument); mail: 1 waiting."""
    jobs = app.broker("jobs")
    jobs.enqueue([app.serializer.dumps(PyTask("tests.worker_tasks:add", [i, 1])) for i in range(3)])
    # Due mid-second: the server's clock may move it by a few ms, not to another second.
    jobs.schedule([app.serializer.dumps(PyTask("tests.worker_tasks:add", [9, 9]))] * 2, due=4102444800.5)
    for func, reason, args in (("pkg.mod:resize", "failed", [1]), ("pkg.mod:send_mail", "not_allowed", [XSS])):
        task = app.serializer.dumps(PyTask(func, args))
        jobs.dead_letter(None, DeadLetter(task=task, reason=reason, error=f"E: {XSS}", func=func,
                                          queue="jobs").to_json())
    app.broker("mail").enqueue([app.serializer.dumps(PyTask("tests.worker_tasks:add", [1, 2]))])


def cell(html: str, queue: str, field: str) -> str:
    row = re.search(rf'<tr data-queue="{queue}">(.*?)</tr>', html, re.S)
    assert row, html
    match = re.search(rf'data-field="{field}">(?:<a [^>]*>)?(\d+)', row.group(1))
    assert match, row.group(1)
    return match.group(1)


def sign_in(client: TestClient) -> str:
    """Sign in with the token; return the CSRF value the dead-letter page's forms carry."""
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?done=signed-in"
    page = client.get("/dead", params={"queue": "jobs"}).text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


def dead_form(client: TestClient) -> dict[str, str]:
    """The hidden fields of the first requeue form on the dead-letter page."""
    page = client.get("/dead", params={"queue": "jobs"}).text
    form = re.search(r'<form method="post" action="/actions/requeue".*?</form>', page, re.S).group(0)  # type: ignore[union-attr]
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))


def test_overview_numbers_match_the_broker(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    html = client_for(app).get("/").text
    assert [cell(html, "jobs", f) for f in ("waiting", "scheduled", "processing", "dead", "workers")] == \
        ["3", "2", "0", "2", "0"]
    assert cell(html, "mail", "waiting") == "1"
    assert "<svg" in html


def test_a_refresh_gets_only_the_live_part(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    fragment = client_for(app).get("/", headers={"X-Fragment": "1"}).text
    assert fragment.lstrip().startswith("<h1>Queues</h1>") and "<html" not in fragment


def test_task_arguments_and_errors_are_escaped_on_every_page(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)
    pages = [client.get("/dead", params={"queue": "jobs"}).text]
    digest = re.search(r'data-digest="(\w+)"', pages[0]).group(1)  # type: ignore[union-attr]
    pages.append(client.get("/dead/show", params={"queue": "jobs", "index": 0, "digest": digest}).text)
    for html in pages:
        assert "<script>window" not in html
        assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html


def test_every_response_forbids_inline_scripts(backend: Backend) -> None:
    response = client_for(backend.app()).get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_actions_without_the_token_are_refused(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)
    fields = {"queue": "jobs", "index": "0", "digest": "0"}
    assert client.post("/actions/purge-all", data={"queue": "jobs", "confirm": "yes"}).status_code == 403
    wrong = client.post("/actions/purge-all", data={"queue": "jobs", "confirm": "yes"},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert client.get("/actions/requeue").status_code == 405  # never by GET
    sign_in(client)
    assert client.post("/actions/requeue", data=fields).status_code == 403  # signed in, but no CSRF value
    assert client.post("/actions/requeue", data={**fields, "csrf": "f" * 64}).status_code == 403
    assert backend.client.llen("jobs_dead") == 2


def test_a_cross_site_post_is_refused_even_with_the_session(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)
    csrf = sign_in(client)
    refused = client.post("/actions/purge-all", data={"queue": "jobs", "confirm": "yes", "csrf": csrf},
                          headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    framed = client.post("/actions/purge-all", data={"queue": "jobs", "confirm": "yes", "csrf": csrf},
                         headers={"Sec-Fetch-Site": "cross-site"})
    assert framed.status_code == 403
    assert client.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert backend.client.llen("jobs_dead") == 2


def test_sign_in_then_requeue_puts_the_task_back_once(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)
    assert client.post("/login", data={"token": "wrong"}, follow_redirects=False).headers["location"] == \
        "/login?done=bad-token"
    sign_in(client)
    fields = dead_form(client)
    done = client.post("/actions/requeue", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/dead?queue=jobs&done=requeued"
    assert backend.client.llen("jobs_dead") == 1
    assert backend.client.llen("jobs") == 4 and backend.client.llen("jobs_noti") == 4
    again = client.post("/actions/requeue", data=fields, follow_redirects=False)
    assert again.headers["location"] == "/dead?queue=jobs&done=gone"
    assert backend.client.llen("jobs") == 4


def test_purge_one_and_purge_all(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)
    sign_in(client)
    assert client.post("/actions/purge", data=dead_form(client)).status_code == 200
    assert backend.client.llen("jobs_dead") == 1 and backend.client.llen("jobs") == 3
    csrf = sign_in(client)
    unconfirmed = client.post("/actions/purge-all", data={"queue": "jobs", "csrf": csrf}, follow_redirects=False)
    assert unconfirmed.headers["location"] == "/dead?queue=jobs&done=confirm"
    assert backend.client.llen("jobs_dead") == 1
    client.post("/actions/purge-all", data={"queue": "jobs", "csrf": csrf, "confirm": "yes"})
    assert backend.client.llen("jobs_dead") == 0


def test_a_script_may_act_with_the_bearer_token(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    response = client_for(app).post("/actions/purge-all", data={"queue": "jobs", "confirm": "yes"},
                                    headers={"Authorization": f"Bearer {TOKEN}"}, follow_redirects=False)
    assert response.status_code == 303
    assert backend.client.llen("jobs_dead") == 0


def test_read_only_offers_no_action_and_refuses_them(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app, read_only=True)
    page = client.get("/dead", params={"queue": "jobs"}).text
    assert "<form method=\"post\"" not in page and "read-only" in page
    assert client.post("/login", data={"token": TOKEN}).status_code == 403
    for action in ("requeue", "purge", "purge-all"):
        response = client.post(f"/actions/{action}", data={"queue": "jobs", "confirm": "yes"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 403
    assert backend.client.llen("jobs_dead") == 2


def test_dead_letters_are_searched_by_function_and_reason(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    client = client_for(app)

    def functions(**params: str) -> list[str]:
        html = client.get("/dead", params={"queue": "jobs", **params}).text
        return re.findall(r'<td class="mono func">([^<]*)</td>', html)

    assert functions() == ["pkg.mod:send_mail", "pkg.mod:resize"]
    assert functions(func="RESIZE") == ["pkg.mod:resize"]
    assert functions(reason="not_allowed") == ["pkg.mod:send_mail"]
    assert functions(func="resize", reason="not_allowed") == []


def test_a_queue_not_shown_cannot_be_acted_on(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    response = client_for(app, queues=("mail",)).post(
        "/actions/purge-all", data={"queue": "jobs", "confirm": "yes"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert backend.client.llen("jobs_dead") == 2


def test_scheduled_page_lists_the_soonest(backend: Backend) -> None:
    app = backend.app()
    fill(app)
    html = client_for(app, queues=("jobs",)).get("/scheduled").text
    assert html.count("2100-01-01 00:00:00 UTC") == 2
    assert 'data-field="scheduled">2<' in html


def test_the_broker_password_is_never_shown() -> None:
    app = Delayed("redis://user:hunter2-secret@127.0.0.1:1/0", load_entry_points=False)
    client = client_for(app)
    for path in ("/", "/workers", "/dead"):
        response = client.get(path)
        assert "hunter2" not in response.text
        assert "redis://user:***@127.0.0.1:1/0" in response.text
    assert response.status_code == 503  # nothing listens on port 1: the page says so, in one line


def test_odd_entries_are_shown_not_fatal(backend: Backend) -> None:
    app = backend.app()
    jobs = app.broker("jobs")
    for entry in (b"not json at all <b>", b'{"reason":"failed","time":1e300,"task":""}',
                  DeadLetter(task=b"\x91", reason="failed", error="see redis://:hunter2@db:6379/0").to_json()):
        jobs.dead_letter(None, entry)
    client = client_for(app)
    page = client.get("/dead", params={"queue": "jobs"}).text
    assert "malformed_entry" in page and "not json at all &lt;b&gt;" in page
    assert "hunter2" not in page and "redis://:***@db:6379/0" in page
    sign_in(client)
    page = client.get("/dead", params={"queue": "jobs"}).text
    assert page.count('action="/actions/purge"') == 3 and page.count('action="/actions/requeue"') == 2
    malformed = re.search(r'<tr data-digest="(\w+)">\s*<td class="num">(\d+)</td>(?:(?!</tr>).)*malformed_entry',
                          page, re.S)
    csrf = re.search(r'name="csrf" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
    fields = {"queue": "jobs", "csrf": csrf, "index": malformed.group(2), "digest": malformed.group(1)}  # type: ignore[union-attr]
    refused = client.post("/actions/requeue", data=fields, follow_redirects=False)
    assert refused.headers["location"] == "/dead?queue=jobs&done=malformed"
    assert client.post("/actions/purge", data=fields, follow_redirects=False).headers["location"] == \
        "/dead?queue=jobs&done=purged"
    assert backend.client.llen("jobs_dead") == 2 and backend.client.llen("jobs") == 0
