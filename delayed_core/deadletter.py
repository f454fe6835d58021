"""Dead letters: tasks a worker could not or may not run, kept with the reason.

A dead letter is stored by the broker as one JSON object (UTF-8), built here and nowhere else (a poison
task's too: see :func:`poison_letter`). JSON keeps it readable with the broker's own tools. The task's
bytes are hex so that any payload, even one that is not valid msgpack or UTF-8, survives untouched and can
be requeued.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DelayedError
from .interfaces import Poisoned


class Reason:
    """The ``reason`` values a dead letter can carry (strings on the wire, so plugins may add more)."""

    UNDECODABLE = "undecodable"  # the bytes are not a task
    NOT_ALLOWED = "not_allowed"  # the function is not in the worker's allowed set
    WRONG_LANGUAGE = "wrong_language"  # a Go task on a Python queue
    FAILED = "failed"  # the function failed and will not be retried
    TIMEOUT = "timeout"  # the function ran past its time limit and will not be retried
    CRASHED = "crashed"  # the process running it died, and it will not be retried
    POISON = "poison"  # its worker died while running it too many times (set by the sweeper)
    INTERNAL = "internal"  # handling it failed inside pydelayed or a plugin (a raising hook, a serializer
    # that cannot encode the retry): recorded rather than run again, since the same error would recur


@dataclass
class DeadLetter:
    """One entry of a queue's dead-letter list.

    :param task: the raw task bytes, exactly as they were taken from the queue.
    :param reason: one of :class:`Reason` (a short machine-readable word).
    :param error: a human-readable one-line description.
    :param traceback: a bounded traceback excerpt, when there was an exception.
    :param queue: the queue name.
    :param worker: id of the worker slot that gave up on it ("" when the sweeper did).
    :param attempts: how many times it was run.
    :param time: unix time when it was dead-lettered.
    :param func: the function path, when the task could be decoded.
    """

    task: bytes
    reason: str
    error: str = ""
    traceback: str = ""
    queue: str = ""
    worker: str = ""
    attempts: int = 0
    time: float = field(default_factory=time.time)
    func: str = ""

    def to_json(self) -> bytes:
        """Encode as the JSON object stored in the dead-letter list."""
        data: dict[str, Any] = asdict(self)
        data["task"] = self.task.hex()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Decode an entry; unknown fields (from newer versions) are ignored.

        :raises MalformedDeadLetter: not a JSON object with fields of the right types (written by hand,
            by another program, or cut short), in one line.
        """
        try:
            data = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise MalformedDeadLetter(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise MalformedDeadLetter(f"a JSON {type(data).__name__}, not an object")
        values = {key: value for key, value in data.items() if key in _FIELD_TYPES}
        for key, value in values.items():
            if not isinstance(value, _FIELD_TYPES[key]) or isinstance(value, bool):
                raise MalformedDeadLetter(f"field {key!r} is {value!r}, not {_FIELD_NAMES[key]}")
        if "reason" not in values:
            raise MalformedDeadLetter("no 'reason' field")
        try:
            values["task"] = bytes.fromhex(values.get("task", ""))
        except ValueError:
            raise MalformedDeadLetter("field 'task' is not hex") from None
        return cls(**values)


def poison_letter(queue: str, poisoned: Poisoned) -> DeadLetter:
    """The dead letter of a task a sweep set aside as poison (same fields as ever, so ``delayed dead``
    reads entries written by older sweepers and by this one alike)."""
    return DeadLetter(
        task=poisoned.task, reason=Reason.POISON, queue=queue, worker=poisoned.worker,
        attempts=poisoned.attempts,
        error=f"recovered {poisoned.attempts - 1} times from workers that stopped holding it",
    )


class MalformedDeadLetter(DelayedError):
    """A dead-letter entry that cannot be decoded; ``delayed dead`` shows it as such and goes on."""


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str, "reason": str, "error": str, "traceback": str, "queue": str, "worker": str,
    "attempts": int, "time": (int, float), "func": str,
}
_FIELD_NAMES = {key: "a number" if key == "time" else "an integer" if key == "attempts" else "a string"
                for key in _FIELD_TYPES}
