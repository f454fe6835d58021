"""The retry plugin: which failures retry, a cap on retries, and backoff of your own.

Backoff itself is built in (``delayed_plugins.retry_policy``): without this plugin a task with
``retry`` other than 0 already waits ``retry_backoff * 2**attempt`` seconds (capped, with jitter). This
plugin decides before that default, adding ``retry_on`` filters, a ``predicate`` and ``max_retries``.

Two ways to use it:

- as an object: ``Delayed(..., plugins=[RetryPolicy(backoff=2.0, retry_on=(ConnectionError,))])``;
- by module name: ``plugins = ["delayed_plugins.retry"]`` in the config. The module then registers a
  ``RetryPolicy`` built from the ``retry_backoff``, ``retry_backoff_max`` and ``retry_jitter``
  settings (per-queue ``[queues.NAME]`` values included) when the app is created.

How many times a task retries is the task's own delayed 1.2 ``retry`` field (retries left; negative =
forever), so tasks written by delayed 1.2 retry the same way here. ``max_retries`` caps it when set.

Matching failures: an executor reports the exception as a *name* (``outcome.error_type``, the class's
``__qualname__``), because the exception may have been raised in another process. A ``retry_on`` entry
matches that name when it is:

- a string equal to the name (``"ConnectionError"``, or the labels ``"Timeout"`` and ``"Crashed"``);
- a class whose ``__qualname__`` is the name, or that has a subclass of that name imported in the
  worker process (so ``OSError`` matches ``"ConnectionRefusedError"``). ``Exception`` and
  ``BaseException`` match every failure, timeouts and crashes included.

Two unrelated classes that share a name cannot be told apart; use ``predicate`` for finer choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from delayed_core import hookimpl
from delayed_core.outcome import NO_RETRY, Outcome
from delayed_core.settings import SettingsRegistry
from delayed_core.task import PyTask

from .retry_policy import BACKOFF_SETTINGS, Jitter, backoff_delay, configured_delay

if TYPE_CHECKING:
    from delayed_core.app import Delayed
    from delayed_core.config import Config

Predicate = Callable[[PyTask, Outcome], bool]

#: classes that stand for "any failure", whose names will never appear in ``error_type`` themselves
CATCH_ALL: tuple[type[BaseException], ...] = (Exception, BaseException)


@lru_cache(maxsize=4096)
def class_matches(cls: type[BaseException], name: str) -> bool:
    """True when ``name`` is the qualname of ``cls`` or of one of its (imported) subclasses."""
    pending: list[type] = [cls]
    seen: set[type] = set()
    while pending:
        current = pending.pop()
        if current.__qualname__ == name:
            return True
        seen.add(current)
        pending.extend(sub for sub in current.__subclasses__() if sub not in seen)
    return False


def matches(entries: Iterable[type[BaseException] | str], error_type: str) -> bool:
    """True when one of ``entries`` (classes or names) matches the failure named ``error_type``."""
    for entry in entries:
        if isinstance(entry, str):
            if entry == error_type:
                return True
        elif entry in CATCH_ALL or class_matches(entry, error_type):
            return True
    return False


class RetryPolicy:
    """Decides retries of failed tasks (a ``delayed_retry_delay`` implementation).

    :param max_retries: cap on retries, whatever the task's ``retry`` field says; None = no cap.
    :param backoff: the first retry's delay in seconds; retry ``n`` waits ``backoff * 2**(n-1)``.
    :param backoff_max: the longest delay in seconds.
    :param jitter: ``"full"``, ``"equal"`` (same as True) or False; see :func:`backoff_delay`.
    :param retry_on: exception classes or names that may retry (see the module docstring).
    :param predicate: ``predicate(task, outcome)``; when given, it must also return True to retry.
    :param config: read ``retry_backoff``, ``retry_backoff_max`` and ``retry_jitter`` from this config,
        per queue, instead of ``backoff``, ``backoff_max`` and ``jitter`` (see :meth:`from_config`).
    """

    def __init__(
        self,
        max_retries: int | None = None,
        backoff: float = 1.0,
        backoff_max: float = 300.0,
        jitter: Jitter = True,
        retry_on: Iterable[type[BaseException] | str] = (Exception,),
        predicate: Predicate | None = None,
        *,
        config: Config | None = None,
    ) -> None:
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, not {max_retries!r}")
        if backoff < 0 or backoff_max < 0:
            raise ValueError("backoff and backoff_max must be >= 0")
        if jitter not in (True, False, "full", "equal"):
            raise ValueError(f"jitter must be 'full', 'equal', True or False, not {jitter!r}")
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.jitter: Jitter = jitter
        self.retry_on = tuple(retry_on)
        self.predicate = predicate
        self.config = config

    @classmethod
    def from_config(cls, config: Config) -> RetryPolicy:
        """A policy whose backoff settings come from ``config`` (and its ``[queues.NAME]`` tables)."""
        return cls(config=config)

    def should_retry(self, task: PyTask, outcome: Outcome) -> bool:
        """Whether this failure may run again: retries left, retryable, and matched by the filters."""
        if not outcome.retryable or task.retry == 0:
            return False
        if self.max_retries is not None and task.attempt >= self.max_retries:
            return False
        if not matches(self.retry_on, outcome.error_type):
            return False
        return self.predicate is None or bool(self.predicate(task, outcome))

    def delay_for(self, queue: str, task: PyTask) -> float:
        """Seconds to wait before running ``task`` again on ``queue``."""
        if self.config is None:
            return backoff_delay(task.attempt, self.backoff, self.backoff_max, self.jitter)
        return configured_delay(self.config, queue, task.attempt)

    @hookimpl
    def delayed_retry_delay(self, queue: str, task: PyTask, outcome: Outcome) -> float | None:
        """The backoff delay when the task should retry; NO_RETRY (give up: dead letter) otherwise."""
        if not self.should_retry(task, outcome):
            # Not None: that would mean "no opinion" and the built-in default would retry at once.
            return NO_RETRY
        return self.delay_for(queue, task)

    def __repr__(self) -> str:
        source = "config" if self.config is not None else f"backoff={self.backoff:g}, max={self.backoff_max:g}"
        return f"<RetryPolicy {source} max_retries={self.max_retries} jitter={self.jitter!r}>"


@hookimpl
def delayed_add_settings(settings: SettingsRegistry) -> None:
    """Declare the backoff settings it reads, so that they exist even with the built-in default disabled
    (``DELAYED_DISABLE_PLUGINS=delayed_plugins.retry_policy``)."""
    settings.add(*BACKOFF_SETTINGS)


@hookimpl
def delayed_app_created(app: Delayed) -> None:
    """Loaded by module name: register a policy configured from the app's settings."""
    app.register_plugin(RetryPolicy.from_config(app.config), name=f"delayed_plugins.retry:{id(app)}")
