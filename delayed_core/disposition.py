"""What becomes of a task once a slot has handled it: the one broker call that settles it.

- ``release``: the task is done (succeeded, or failed with dead letters off); the same call may take
  the slot's next task;
- ``requeue``: it failed and runs again, as ``retry`` (its next attempt), after ``delay`` seconds;
- ``dead_letter``: it may not, cannot or will not run again; ``letter`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .deadletter import DeadLetter
from .interfaces.tracking import Finish
from .task import PyTask, Task

RELEASE = "release"
REQUEUE = "requeue"
DEAD_LETTER = "dead_letter"


# Not frozen: a frozen dataclass sets each of its 11 fields through object.__setattr__, which made building
# one cost more than the rest of the worker's own Python per task. Treat it as immutable all the same (a
# changed decision is a new one), but for ``finish``, which the runner fills in before committing it.
@dataclass(slots=True)
class Disposition:
    """A decision about the task a slot holds in ``queue`` (its bytes: ``raw``).

    :param task: the decoded task (None when the bytes are not one).
    :param take_next: a release may take the slot's next task in the same call.
    :param last_resort: a release standing in for a dead letter the broker refused to store.
    """

    kind: str
    queue: str
    raw: bytes
    task: Task | None
    take_next: bool = True
    retry: PyTask | None = None
    retry_bytes: bytes = b""
    delay: float = 0.0
    letter: DeadLetter | None = None
    last_resort: bool = False
    #: the record write of a tracked task, done by the same broker call (see results.py)
    finish: Finish | None = None


def describe_error(exc: BaseException, short: bool = False) -> str:
    """One line for a dead letter: ``"Type: message"``. Safe with exceptions whose ``__str__`` raises.

    :param short: leave out the type name (for errors whose message already says it all).
    """
    try:
        text = " ".join(str(exc).split())
    except Exception:
        text = "(the exception cannot be shown)"
    text = text[:500]
    if short and text:
        return text
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name
