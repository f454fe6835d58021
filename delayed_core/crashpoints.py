"""Named boundaries of the worker protocol, where the crash-point harness can kill a worker.

The worker and the default broker plugin (Redis) call :func:`reached` at each boundary. In production
nothing is installed and a call costs one global lookup and one comparison. The test harness
(``delayed_core.testing.crashpoints``) installs an action in the worker process, for example "SIGKILL
this process the first time ``after_task`` is reached", and then proves that no task is lost.

Points, in the order a task meets them (``docs/reliability.md`` gives the duplicates measured at each):

- ``after_blpop``: the broker took its wake-up signal but not yet the task (the default plugin, Redis, only);
- ``after_dequeue``: the slot holds a task it has not started;
- ``mid_task``: the task function is running (reached by the harness's own task functions);
- ``after_task``: the task returned, its release not yet sent;
- ``after_release_take``: the release-and-take reply arrived (release and take are one atomic script,
  so there is no point between them: this is the nearest one);
- ``before_retry_requeue``: a failed task's retry is about to be requeued;
- ``before_hand_back``: at a shutdown timeout, a running task is about to be handed back.

Sweeper points (:data:`SWEEPER_POINTS`, reached in a sweeper process, not in a worker):

- ``before_bury``: a sweep set poison tasks aside; their dead letters are not stored yet.
"""

from __future__ import annotations

from collections.abc import Callable

POINTS: tuple[str, ...] = (
    "after_blpop",
    "after_dequeue",
    "mid_task",
    "after_task",
    "after_release_take",
    "before_retry_requeue",
    "before_hand_back",
)
#: points a sweeper process reaches (kept apart: the worker harness runs every point of POINTS)
SWEEPER_POINTS: tuple[str, ...] = ("before_bury",)

_action: Callable[[str], None] | None = None


def install(action: Callable[[str], None] | None) -> None:
    """Call ``action(point)`` at every boundary from now on (None removes it). Test harnesses only."""
    global _action
    _action = action


def reached(point: str) -> None:
    """Mark that this process reached ``point`` (see the module docstring)."""
    if _action is not None:
        _action(point)
