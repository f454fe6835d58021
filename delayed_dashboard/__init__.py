"""``delayed dashboard``: a small web dashboard for pydelayed queues (extra ``pydelayed[dashboard]``).

Server-rendered pages (Starlette, Jinja2), served by uvicorn, refreshed live by a few lines of
JavaScript. See docs/dashboard.md.
"""

from .server import create_app, serve

__all__ = ["create_app", "serve"]
