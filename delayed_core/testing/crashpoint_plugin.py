"""Worker-side half of the crash-point harness: load with ``delayed worker --plugin`` and arm by environment.

Environment switches (read once, when the module is imported):

- ``DELAYED_CRASHPOINT=<point>``: one of :data:`delayed_core.crashpoints.POINTS`; unset means disarmed;
- ``DELAYED_CRASHPOINT_MODE=sigkill|disconnect`` (default ``sigkill``):
  ``sigkill`` SIGKILLs the worker process there; ``disconnect`` cuts every connection the worker process
  has to its broker (the broker package's ``testing.cut_connections(broker)``), so the next command fails,
  and the worker must carry on;
- ``DELAYED_CRASHPOINT_AFTER=N`` (default 1): act the Nth time the point is reached in this process, once;
- ``DELAYED_CRASHPOINT_PID``: set by this module in the worker to its own pid, so that a child process of
  the fork or subprocess executor that reaches ``mid_task`` kills the worker, not itself.

Before it acts, the plugin logs ``crash point <point> fired (<mode>, reach N)`` on the ``delayed`` logger,
which the harness reads from the worker's log to know the crash really happened.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from delayed_core import crashpoints, hookimpl
from delayed_core.errors import ConfigError

from .crash_switches import AFTER_VARIABLE, FIRED, MODE_VARIABLE, MODES, PID_VARIABLE, POINT_VARIABLE

if TYPE_CHECKING:
    from delayed_core.worker import Worker

logger = logging.getLogger("delayed.crashpoints")

#: seconds a child of the fork or subprocess executor keeps running its task after killing the worker
CHILD_GRACE = 1.0


def connection_cutter(broker: Any) -> Callable[[Any], int]:
    """The broker package's ``testing.cut_connections``: for ``delayed_redis.broker.RedisBroker`` it is
    ``delayed_redis.testing.cut_connections``. A third-party broker provides the same to support the
    ``disconnect`` mode; the core stays free of any broker's client library."""
    package = type(broker).__module__.split(".")[0]
    try:
        return importlib.import_module(f"{package}.testing").cut_connections  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        raise ConfigError(f"crash point mode 'disconnect' needs {package}.testing.cut_connections(broker); "
                          f"broker {type(broker).__name__} does not provide it") from None


class CrashAction:
    """What happens at the armed point: called by :func:`delayed_core.crashpoints.reached` everywhere.

    :param point: the armed point.
    :param mode: ``sigkill`` or ``disconnect``.
    :param after: act at this reach of ``point`` (1 = the first).
    :param worker_pid: the process to SIGKILL (the worker, also when reached in an executor's child).
    """

    def __init__(self, point: str, mode: str, after: int, worker_pid: int) -> None:
        self.point, self.mode, self.after, self.worker_pid = point, mode, after, worker_pid
        self.reaches = 0
        self.broker: Any = None
        self.cut: Callable[[Any], int] | None = None
        self._lock = threading.Lock()

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        with self._lock:
            self.reaches += 1
            if self.reaches != self.after:
                return
        if self.mode == "disconnect" and self.cut is None:
            # An executor's child (the worker's connections live in another process, out of reach), or a
            # broker without cut_connections (its start-up already logged why).
            logger.error("crash point %s: mode disconnect cannot act in process %d", point, os.getpid())
            return
        logger.warning(FIRED.format(point=point) + " (%s, reach %d)", self.mode, self.reaches)
        if self.mode == "sigkill":
            os.kill(self.worker_pid, signal.SIGKILL)
            if self.worker_pid != os.getpid():
                # In an executor's child: the task goes on, as a real one would when its worker dies. A
                # child that dies with its worker stops during this pause; one that outlives it finishes.
                time.sleep(CHILD_GRACE)
            return
        cut = self.cut(self.broker)
        logger.warning("crash point %s: cut %d connection(s) of process %d", point, cut, os.getpid())


def from_environment(env: Mapping[str, str]) -> CrashAction | None:
    """Build the action the variables ask for (None when ``DELAYED_CRASHPOINT`` is unset)."""
    point = env.get(POINT_VARIABLE, "")
    if not point:
        return None
    if point not in crashpoints.POINTS + crashpoints.SWEEPER_POINTS:
        raise ConfigError(f"{POINT_VARIABLE}={point!r} is not a crash point; choose from "
                          f"{', '.join(crashpoints.POINTS + crashpoints.SWEEPER_POINTS)}")
    mode = env.get(MODE_VARIABLE, "sigkill")
    if mode not in MODES:
        raise ConfigError(f"{MODE_VARIABLE}={mode!r}: choose {' or '.join(MODES)}")
    raw_after = env.get(AFTER_VARIABLE, "1")
    if not raw_after.isdigit() or int(raw_after) < 1:
        raise ConfigError(f"{AFTER_VARIABLE}={raw_after!r}: expected an integer >= 1")
    pid = int(env.get(PID_VARIABLE) or os.getpid())
    return CrashAction(point, mode, int(raw_after), pid)


_action = from_environment(os.environ)
if _action is not None:
    # Children of the fork and subprocess executors inherit this: they kill the worker, not themselves.
    os.environ.setdefault(PID_VARIABLE, str(_action.worker_pid))
    crashpoints.install(_action)


@hookimpl
def delayed_worker_started(worker: Worker) -> None:
    """Keep the worker's broker, which the ``disconnect`` mode cuts off, and how to cut it.

    A broker without ``cut_connections`` makes this hook raise: the worker logs the one-line reason and
    serves on, and the point never fires, which the harness reports.
    """
    if _action is not None:
        _action.broker = worker.broker
        if _action.mode == "disconnect":
            _action.cut = connection_cutter(worker.broker)
