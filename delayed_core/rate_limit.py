"""Global rate limits per task function: ``@app.task(rate_limit="100/m")``.

A limit spreads starts evenly: ``"100/m"`` lets one task of the function start every 0.6 s, counted
across every worker of every process (the broker keeps the next free start time, see
:class:`~delayed_core.interfaces.FlowControl`). A task that comes too early is not dropped and no worker
waits for it: it moves to the scheduled tasks for the start time reserved for it, and the slot takes the
next task.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .errors import ConfigError
from .interfaces import Broker, FlowControl

logger = logging.getLogger("delayed.worker")

#: seconds per unit of a limit
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_FORMAT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*")


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` starts per ``period`` seconds, evenly spaced.

    :param text: the limit as written (``"100/m"``), for messages.
    """

    count: float
    period: float
    text: str

    @property
    def interval(self) -> float:
        """Seconds between two starts."""
        return self.period / self.count


def parse_rate_limit(text: str | None) -> RateLimit | None:
    """``"100/m"`` (also ``/s``, ``/h``) as a RateLimit; None for None; ConfigError for anything else."""
    if text is None:
        return None
    match = _FORMAT.fullmatch(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"rate_limit must look like '100/m' (a positive count per s, m or h), not {text!r}")
    return RateLimit(float(match.group(1)), PERIODS[match.group(2)], text.strip())


def limit_key(func_path: str) -> str:
    """The name under which every worker shares the limit of ``func_path``."""
    return f"delayed:rate:{func_path}"


def put_aside(broker: Broker, slot_id: str, raw: bytes, func_path: str, limit: RateLimit) -> bool:
    """True when ``limit`` put the task aside for a later start (one broker call: the throttle)."""
    if not isinstance(broker, FlowControl):
        raise ConfigError(f"{func_path} has rate_limit={limit.text!r}, which the {type(broker).__name__} "
                          "broker cannot enforce (it lacks FlowControl)")
    wait = broker.throttle(slot_id, raw, limit_key(func_path), limit.interval)
    if wait > 0 and logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s over its rate limit %s: scheduled to start in %.3fs", func_path, limit.text, wait)
    return wait > 0
