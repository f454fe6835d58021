"""Who may change anything: the action token, sign-in sessions, CSRF, and headers on every response.

- Reading pages needs nothing (the dashboard binds 127.0.0.1 unless told otherwise).
- An action (requeue, purge) is a POST, refused with 403 unless it carries either
  ``Authorization: Bearer <token>`` (scripts: a browser cannot send that header cross-site without a
  CORS preflight, which this app never answers), or the session cookie of a browser that signed in with
  the token AND the CSRF value of that session in the form (a cross-site form can send the cookie, not
  the value). SameSite=Strict cookies and an Origin check stop cross-site posts a second time.
- In read-only mode no action is offered and every action route answers 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

COOKIE = "delayed_dashboard_session"
#: sign-in sessions kept in memory (the oldest is forgotten first)
MAX_SESSIONS = 1000

#: sent with every response; scripts and styles come only from /static, nothing may frame the pages
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own form posts
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class Guard:
    """Checks tokens, sessions and CSRF values.

    :param token: the action token (None only in read-only mode).
    :param read_only: refuse every action.
    """

    def __init__(self, token: str | None, read_only: bool) -> None:
        if token is None and not read_only:
            raise ValueError("a dashboard that allows actions needs a token")
        self.token = token
        self.read_only = read_only
        self._secret = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, None] = OrderedDict()

    def token_ok(self, given: str) -> bool:
        """Constant-time comparison with the token."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def sign_in(self, given: str) -> str | None:
        """A new session id when ``given`` is the token, else None."""
        if self.read_only or not self.token_ok(given):
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[session] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def sign_out(self, request: Request) -> None:
        """Forget the request's session."""
        self._sessions.pop(request.cookies.get(COOKIE, ""), None)

    def session(self, request: Request) -> str | None:
        """The request's session id if it is one this process issued."""
        session = request.cookies.get(COOKIE, "")
        return session if session in self._sessions else None

    def csrf(self, session: str | None) -> str:
        """The CSRF value forms of this session carry ("" without a session)."""
        if session is None:
            return ""
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def refusal(self, request: Request, form: MutableMapping[str, Any]) -> str | None:
        """Why an action must be refused, or None when it is allowed."""
        if self.read_only:
            return "this dashboard is read-only"
        if not same_origin(request):
            return "cross-site request"
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return None if self.token_ok(auth[7:].strip()) else "wrong token"
        session = self.session(request)
        if session is None:
            return "sign in with the token first"
        if not hmac.compare_digest(str(form.get("csrf", "")).encode(), self.csrf(session).encode()):
            return "missing or stale form (reload the page)"
        return None


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to every HTTP response."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
