"""``--log-format json``: one JSON object per log line, for log pipelines.

A small :class:`logging.Formatter` of the standard library rather than a package such as
python-json-logger or structlog: the whole job is ``json.dumps`` of a few fields, a dependency would add
install weight and a version to track for every user (JSON logs are a core feature, not an extra), and
the standard library keeps working with whatever handlers an application already has.

Every line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``; inside a
task, the fields of :mod:`delayed_core.logcontext` (``queue``, ``worker_id``, ``function``, ``attempt``,
``duration``, ``outcome``); with an exception, ``exception`` (the formatted traceback, in the same line).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from .logcontext import current_fields


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON. Use it with any handler:
    ``handler.setFormatter(JsonFormatter())``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record, its task context and any exception, as a single JSON line."""
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(current_fields())
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        # default=str: a log argument that is not JSON (bytes, a path) must never cost the line.
        return json.dumps(data, ensure_ascii=False, default=str)
