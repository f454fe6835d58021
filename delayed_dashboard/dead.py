"""Dead letters for the dashboard: a bounded search, finding one entry again, and the three actions.

Entries have no id and move as new ones are pushed in front, so the pages name an entry by its index
when shown plus a digest of its bytes; an action looks for the digest near that index. Requeue and
purge go through the broker's atomic operations (``remove_dead_letter`` removes by exact bytes), so
two people pressing requeue on one letter run its task once.
"""

from __future__ import annotations

from dataclasses import dataclass

from delayed_core.deadletter import DeadLetter, MalformedDeadLetter
from delayed_core.interfaces import Broker, Serializer
from delayed_core.redact import redact

from .views import DeadView, describe_task, digest

#: entries shown per page
PAGE = 50
#: a filtered search reads at most this many of the newest entries (bounded cost, said on the page)
SEARCH_WINDOW = 1000
#: entries read per LRANGE while searching
CHUNK = 200
#: how far an entry may have moved since it was shown (others pushed in front, or removed before it)
DRIFT_BEFORE, DRIFT_AFTER = 200, 1000


@dataclass
class Search:
    """A page of dead letters and what the search covered."""

    entries: list[DeadView]
    total: int
    scanned: int
    more: bool


#: the reason shown for an entry that is not a dead letter (as ``delayed dead list --json`` says it)
MALFORMED = "malformed_entry"


def parse(queue: str, index: int, raw: bytes, serializer: Serializer, full: bool = False) -> DeadView:
    """A page record for one raw entry; an entry that is not a dead letter is shown as such.

    Error, traceback and task are free text: a URL with a password in them is hidden, as ``delayed dead``
    hides it.
    """
    try:
        letter = DeadLetter.from_json(raw)
    except MalformedDeadLetter as exc:
        return DeadView(queue, index, digest(raw), 0.0, MALFORMED, "?", f"undecodable entry: {exc}", 0, "",
                        redact(raw[: None if full else 200].decode(errors="replace")))
    func, task = describe_task(serializer, letter.task, None if full else 160)
    return DeadView(queue, index, digest(raw), letter.time, letter.reason, letter.func or func,
                    redact(letter.error), letter.attempts, letter.worker, redact(task),
                    redact(letter.traceback) if full else "")


def matches(view: DeadView, func: str, reason: str) -> bool:
    """True when the entry's function contains ``func`` (any case) and its reason is ``reason`` (if given)."""
    return (not func or func.lower() in view.func.lower()) and (not reason or view.reason == reason)


def search(broker: Broker, serializer: Serializer, total: int, func: str = "", reason: str = "",
           offset: int = 0) -> Search:
    """Entries ``offset`` .. ``offset + PAGE`` (of the matches, when filtered), newest first.

    :param total: the list's length (from ``info()``: LLEN, not a read of the list).
    """
    name = broker.name
    if not func and not reason:
        raws = broker.dead_letters(offset, offset + PAGE - 1)
        views = [parse(name, offset + i, raw, serializer) for i, raw in enumerate(raws)]
        return Search(views, total, len(raws), offset + PAGE < total)
    found: list[DeadView] = []
    skipped = scanned = 0
    while scanned < min(total, SEARCH_WINDOW) and len(found) <= PAGE:
        raws = broker.dead_letters(scanned, min(scanned + CHUNK, SEARCH_WINDOW) - 1)
        if not raws:
            break
        for i, raw in enumerate(raws):
            view = parse(name, scanned + i, raw, serializer)
            if not matches(view, func, reason):
                continue
            if skipped < offset:
                skipped += 1
            else:
                found.append(view)
        scanned += len(raws)
    return Search(found[:PAGE], total, scanned, len(found) > PAGE)


def find(broker: Broker, index: int, wanted: str) -> tuple[int, bytes] | None:
    """The entry whose digest is ``wanted``, looked for around ``index``: ``(its index now, bytes)``."""
    first = max(0, index - DRIFT_BEFORE)
    for i, raw in enumerate(broker.dead_letters(first, index + DRIFT_AFTER)):
        if digest(raw) == wanted:
            return first + i, raw
    return None


def requeue(broker: Broker, raw: bytes) -> bool:
    """Remove the entry and enqueue its task, atomically; False when someone else took it first.

    :raises MalformedDeadLetter: the entry holds no task to requeue (it can still be purged).
    """
    return broker.remove_dead_letter(raw, requeue_task=DeadLetter.from_json(raw).task)


def purge_one(broker: Broker, raw: bytes) -> bool:
    """Remove the entry; False when it was already gone."""
    return broker.remove_dead_letter(raw)
