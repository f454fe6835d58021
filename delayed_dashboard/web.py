"""The Starlette app: pages (GET, server-rendered, refreshed by fetching the page's live part) and
actions (POST, guarded; see security.py).

A page asked for with the header ``X-Fragment: 1`` answers only its ``live`` block, which
``static/dashboard.js`` swaps in every 2 s.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from delayed_core.app import Delayed
from delayed_core.deadletter import MalformedDeadLetter, Reason
from delayed_core.errors import DelayedError
from delayed_core.redact import redact

from . import dead, tasks
from .chart import chart
from .reader import Reader
from .security import COOKIE, Guard, SecurityHeaders, same_origin
from .tasks import valid_id
from .timefmt import ago, when

HERE = Path(__file__).parent
#: largest form body an action accepts
MAX_FORM = 16 * 1024
#: what a redirect after an action may say (a fixed set: nothing from the request is echoed)
NOTICES = {
    "requeued": "Requeued: the task is back in its queue.",
    "purged": "Dead letter deleted.",
    "purged-all": "Every dead letter of the queue was deleted.",
    "gone": "That dead letter is gone already (someone else requeued or deleted it).",
    "confirm": "Tick the box to confirm deleting every dead letter.",
    "signed-in": "Signed in: actions are enabled in this browser.",
    "bad-token": "That is not the token.",
    "malformed": "That entry is not a dead letter pydelayed can read: it holds no task to requeue (purge it).",
    "cancelled": "Cancelled: the task will not run (or its worker stopped it).",
    "not-cancelled": "Not cancelled: the task has finished already, is unknown, or its worker did not confirm "
                     "the stop in time (the status below says which).",
}
#: seconds the cancel action waits for a worker to confirm it stopped a running task
CANCEL_WAIT = 3.0
REASONS = sorted(value for name, value in vars(Reason).items() if name.isupper())


class Dashboard:
    """Pages and actions over one app's brokers.

    :param app: the app (brokers, serializer).
    :param reader: what the pages read.
    :param guard: who may act.
    :param broker_label: the broker URL as shown (its password already hidden).
    :param refresh: seconds between live refreshes.
    """

    def __init__(self, app: Delayed, reader: Reader, guard: Guard, broker_label: str, refresh: float = 2.0) -> None:
        self.app = app
        self.reader = reader
        self.guard = guard
        self.broker_label = broker_label
        self.refresh = refresh
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                      undefined=jinja2.StrictUndefined)
        self.env.filters.update(when=when, ago=ago, chart=chart)

    # -- rendering -------------------------------------------------------------------------------
    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The page, or only its live block when the page's script asks for it."""
        session = self.guard.session(request)
        context.setdefault("page", "")
        context.update(
            request=request, broker=self.broker_label, read_only=self.guard.read_only,
            signed_in=session is not None, csrf=self.guard.csrf(session), refresh_ms=int(self.refresh * 1000),
            now=time.time(), notice=NOTICES.get(request.query_params.get("done", ""), ""),
        )
        template = self.env.get_template(name)
        if request.headers.get("x-fragment") == "1":
            html = "".join(template.blocks["live"](template.new_context(context)))
        else:
            html = template.render(context)
        return HTMLResponse(html, status_code=status)

    def page(self, request: Request, name: str, read: Callable[[], dict[str, Any]]) -> HTMLResponse:
        """Render ``name`` with the context ``read()`` returns; a broker outage or error is a 503 page."""
        try:
            context = read()
        except DelayedError as exc:
            return self.render(request, "unavailable.html", status=503, error=redact(str(exc)))
        return self.render(request, name, **context)

    # -- pages -----------------------------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        """Every queue's counts and chart."""
        return self.page(request, "overview.html", lambda: {"data": self.reader.overview()})

    def workers(self, request: Request) -> Response:
        """Every worker id."""
        return self.page(request, "workers.html", lambda: {"data": self.reader.workers()})

    def scheduled(self, request: Request) -> Response:
        """The next scheduled tasks of each queue."""
        return self.page(request, "scheduled.html", lambda: {"data": self.reader.scheduled()})

    def dead_letters(self, request: Request) -> Response:
        """A page of dead letters, filtered by function and reason."""
        params = request.query_params
        func, reason = params.get("func", "").strip(), params.get("reason", "")
        offset = max(0, int(params["offset"])) if params.get("offset", "").isdigit() else 0

        def read() -> dict[str, Any]:
            queues = self.reader.queue_names()
            queue = params.get("queue") or (queues[0] if queues else "")
            data = None
            if queue in queues:
                broker = self.reader.broker(queue)
                data = dead.search(broker, self.app.serializer, broker.info().dead, func, reason, offset)
            return {"data": data, "queues": queues, "queue": queue, "func": func, "reason": reason,
                    "reasons": REASONS, "offset": offset, "page_size": dead.PAGE, "window": dead.SEARCH_WINDOW}

        return self.page(request, "dead.html", read)

    def dead_letter(self, request: Request) -> Response:
        """One dead letter in full (traceback, whole task)."""
        params = request.query_params
        queue, wanted = params.get("queue", ""), params.get("digest", "")
        index = int(params["index"]) if params.get("index", "").isdigit() else 0

        def read() -> dict[str, Any]:
            found = dead.find(self.reader.broker(queue), index, wanted) if self.reader.has(queue) else None
            data = None if found is None else dead.parse(queue, found[0], found[1], self.app.serializer, full=True)
            return {"data": data, "queue": queue}

        return self.page(request, "dead_show.html", read)

    def task(self, request: Request) -> Response:
        """A tracked task by id (the search box): status, times, attempts, worker, result or error."""
        task_id = request.query_params.get("id", "").strip()

        def read() -> dict[str, Any]:
            problem = valid_id(task_id) if task_id else None
            data = tasks.look_up(self.app, task_id) if task_id and problem is None else None
            return {"data": data, "task_id": task_id, "problem": problem}

        return self.page(request, "task.html", read)

    # -- signing in ------------------------------------------------------------------------------
    def sign_in_page(self, request: Request) -> Response:
        """The form where a browser gives the token once."""
        return self.render(request, "login.html")

    async def sign_in(self, request: Request) -> Response:
        """Check the token; on success set the session cookie."""
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("form too large", status_code=413)
        if self.guard.read_only:
            return PlainTextResponse("forbidden: this dashboard is read-only", status_code=403)
        if not same_origin(request):
            return PlainTextResponse("forbidden: cross-site request", status_code=403)
        session = self.guard.sign_in(form.get("token", ""))
        if session is None:
            return RedirectResponse("/login?done=bad-token", status_code=303)
        response = RedirectResponse("/?done=signed-in", status_code=303)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        """Forget this browser's session."""
        self.guard.sign_out(request)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- actions ---------------------------------------------------------------------------------
    async def act(self, request: Request) -> Response:
        """POST /actions/{requeue,purge,purge-all}: refused with 403 unless allowed (see security.py)."""
        form = await self.allowed_form(request)
        if isinstance(form, Response):
            return form
        action, queue = request.path_params["action"], form.get("queue", "")
        if not self.reader.has(queue):
            return PlainTextResponse("no such queue", status_code=404)
        try:
            outcome = await run_in_threadpool(self.apply, action, queue, form)
        except DelayedError as exc:
            return PlainTextResponse(f"cannot reach the broker: {redact(str(exc))}", status_code=503)
        if outcome is None:
            return PlainTextResponse("unknown action", status_code=404)
        query = urllib.parse.urlencode({"queue": queue, "done": outcome})
        return RedirectResponse(f"/dead?{query}", status_code=303)

    async def allowed_form(self, request: Request) -> dict[str, str] | Response:
        """An action's form, or the response refusing it (too large: 413; not allowed: 403)."""
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("form too large", status_code=413)
        refusal = self.guard.refusal(request, form)
        if refusal is not None:
            return PlainTextResponse(f"forbidden: {refusal}", status_code=403)
        return form

    async def cancel_task(self, request: Request) -> Response:
        """POST /tasks/cancel: ``handle.cancel()``, guarded as the dead-letter actions are."""
        form = await self.allowed_form(request)
        if isinstance(form, Response):
            return form
        task_id = form.get("id", "")
        if valid_id(task_id) is not None:
            return PlainTextResponse("not a task id", status_code=400)
        try:
            done = await run_in_threadpool(tasks.cancel, self.app, task_id, CANCEL_WAIT)
        except DelayedError as exc:
            return PlainTextResponse(f"cannot reach the broker: {redact(str(exc))}", status_code=503)
        query = urllib.parse.urlencode({"id": task_id, "done": "cancelled" if done else "not-cancelled"})
        return RedirectResponse(f"/tasks?{query}", status_code=303)

    def apply(self, action: str, queue: str, form: dict[str, str]) -> str | None:
        """Do one action; return the notice to show (None: no such action)."""
        broker = self.reader.broker(queue)
        if action == "purge-all":
            if form.get("confirm") != "yes":
                return "confirm"
            broker.purge_dead_letters()
            return "purged-all"
        if action not in ("requeue", "purge"):
            return None
        index = int(form["index"]) if form.get("index", "").isdigit() else 0
        found = dead.find(broker, index, form.get("digest", ""))
        if found is None:
            return "gone"
        if action == "requeue":
            try:
                return "requeued" if dead.requeue(broker, found[1]) else "gone"
            except MalformedDeadLetter:
                return "malformed"
        return "purged" if dead.purge_one(broker, found[1]) else "gone"

    # -- the ASGI app ----------------------------------------------------------------------------
    def asgi(self) -> SecurityHeaders:
        """The Starlette app, wrapped in the security headers."""
        routes = [
            Route("/", self.overview), Route("/workers", self.workers), Route("/scheduled", self.scheduled),
            Route("/dead", self.dead_letters), Route("/dead/show", self.dead_letter), Route("/tasks", self.task),
            Route("/tasks/cancel", self.cancel_task, methods=["POST"]),
            Route("/login", self.sign_in_page), Route("/login", self.sign_in, methods=["POST"]),
            Route("/logout", self.sign_out, methods=["POST"]),
            Route("/actions/{action}", self.act, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        return SecurityHeaders(Starlette(routes=routes))


async def read_form(request: Request) -> dict[str, str] | None:
    """A URL-encoded form body (first value of each field), or None when it is too large.

    Parsed here rather than by Starlette, which would need python-multipart for one simple format.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    fields = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
