"""The built-in retry decision: honour delayed 1.2's ``retry`` count, with exponential backoff.

Whenever a task's ``retry`` is not 0 (negative: forever) and its failure is retryable, it runs again
after ``retry_backoff * 2**attempt`` seconds, capped at ``retry_backoff_max``, with jitter unless
``retry_jitter`` is off. This plugin declares the three settings (``delayed_add_settings``); they apply
per queue (``[queues.NAME]``). A task that retries forever therefore settles at one run per
``retry_backoff_max``, never a hot loop.

It is ``trylast``, so the ``retry`` plugin (predicates, ``max_retries``) or any user plugin decides first.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from delayed_core import hookimpl
from delayed_core.settings import Setting, SettingsRegistry, not_negative
from delayed_core.task import PyTask

if TYPE_CHECKING:
    from delayed_core.app import Delayed
    from delayed_core.config import Config
    from delayed_core.outcome import Outcome

Jitter = Literal["full", "equal"] | bool

RETRY_BACKOFF: Setting[float] = Setting(
    "retry_backoff", float, 1.0, "retries: first backoff delay in seconds (doubles per attempt)", not_negative,
    per_queue=True)
RETRY_BACKOFF_MAX: Setting[float] = Setting(
    "retry_backoff_max", float, 300.0, "retries: longest backoff delay in seconds", not_negative, per_queue=True)
RETRY_JITTER: Setting[bool] = Setting(
    "retry_jitter", bool, True, "retries: randomise backoff delays to spread retries", per_queue=True)
#: the backoff settings, declared by this plugin and by the ``retry`` plugin (the same objects: no clash)
BACKOFF_SETTINGS = (RETRY_BACKOFF, RETRY_BACKOFF_MAX, RETRY_JITTER)


def backoff_delay(attempt: int, backoff: float, backoff_max: float, jitter: Jitter,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``attempt + 1``: ``backoff * 2**attempt``, capped at ``backoff_max``.

    - ``jitter="full"``: uniform in ``[0, delay]``; spreads a burst of failures the most, but a retry
      may come at once.
    - ``jitter="equal"`` (also ``True``): uniform in ``[delay/2, delay]``; still spreads retries, and
      each retry waits at least as long as the previous one's lower bound, so delays keep growing.
    - ``jitter=False``: exactly ``delay``.
    """
    # min() before the power would still overflow for huge attempts; cap the exponent instead.
    delay = min(backoff_max, backoff * 2.0 ** min(attempt, 64))
    if jitter == "full":
        return delay * rand()
    if jitter is True or jitter == "equal":
        return delay / 2 + delay / 2 * rand()
    return delay


def configured_delay(config: Config, queue: str, attempt: int) -> float:
    """:func:`backoff_delay` with the ``retry_backoff*`` and ``retry_jitter`` settings of ``queue``."""
    settings = config.for_queue(queue)
    return backoff_delay(attempt, settings.get(RETRY_BACKOFF), settings.get(RETRY_BACKOFF_MAX),
                         settings.get(RETRY_JITTER))


class DefaultRetry:
    """The built-in ``delayed_retry_delay`` answer for one app, reading its settings per queue."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @hookimpl(trylast=True)
    def delayed_retry_delay(self, queue: str, task: PyTask, outcome: Outcome) -> float | None:
        """The backoff delay while ``task.retry`` is not 0 and the failure is retryable; else no opinion."""
        if task.retry == 0 or not outcome.retryable:
            return None
        return configured_delay(self.config, queue, task.attempt)

    def __repr__(self) -> str:
        return "<DefaultRetry from config>"


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare ``retry_backoff``, ``retry_backoff_max`` and ``retry_jitter``."""
    settings.add(*BACKOFF_SETTINGS)


@hookimpl
def delayed_app_created(app: Delayed) -> None:
    """Register the default decision, bound to this app's settings (nothing kept at module level)."""
    app.register_plugin(DefaultRetry(app.config), name=f"delayed_plugins.retry_policy:{id(app)}")
