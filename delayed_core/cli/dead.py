"""``delayed dead list | show N | requeue N | requeue --all | purge --yes``: inspect and revive dead letters.

Entries are numbered as ``list`` prints them: 0 is the newest. Requeueing removes the entry and
enqueues its task in one atomic broker operation, so a task is never both dead and queued, and two
people requeueing the same entry at once run it once. The task is put back exactly as it was
dead-lettered (its ``retry`` count included), so it gets one more run.

An entry that cannot be decoded (not written by pydelayed, or damaged) is shown as such, with its raw
text, and skipped by ``requeue --all``; it never stops a listing or a requeue partway.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from ..app import Delayed
from ..deadletter import DeadLetter, MalformedDeadLetter
from ..errors import DelayedError, TaskDecodeError
from ..interfaces import Broker
from ..redact import redact
from .common import ArgumentParser, add_broker_flag, build_app, build_config, non_negative_int

#: entries ``dead list`` shows by default: a page, so that a list of 10k letters answers at once
LIST_LIMIT = 100


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dead`` and its subcommands."""
    parser = subparsers.add_parser("dead", help="list, show, requeue or purge dead letters",
                                   description="Inspect a queue's dead letters (newest first, numbered "
                                               "from 0) and put their tasks back.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=ArgumentParser)
    actions.required = True

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_broker_flag(sub)
        sub.add_argument("--queue", metavar="NAME", help="the queue (default: the 'queue' setting)")
        return sub

    listing = action("list", "list dead letters, newest first")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.add_argument("--limit", type=non_negative_int, default=LIST_LIMIT, metavar="N",
                         help=f"show at most N entries (default {LIST_LIMIT}; 0: all of them)")
    listing.add_argument("--offset", type=non_negative_int, default=0, metavar="N",
                         help="start at entry number N (default 0, the newest)")
    listing.set_defaults(run=run_list)
    show = action("show", "print one dead letter with its traceback and decoded task")
    show.add_argument("index", type=non_negative_int, metavar="N", help="entry number, as 'list' prints it")
    show.set_defaults(run=run_show)
    requeue = action("requeue", "put dead tasks back in their queue")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("index", type=non_negative_int, nargs="?", metavar="N", help="entry number")
    which.add_argument("--all", action="store_true", help="every dead letter of the queue")
    requeue.set_defaults(run=run_requeue)
    purge = action("purge", "delete every dead letter of the queue")
    purge.add_argument("--yes", action="store_true", help="really delete them")
    purge.set_defaults(run=run_purge)


def open_queue(args: argparse.Namespace) -> tuple[Delayed, str, Broker]:
    """The app, queue name and broker named by the flags."""
    config = build_config(args, ())
    app = build_app(config)
    queue = args.queue or config["queue"]
    return app, queue, app.broker(queue)


def describe_task(app: Delayed, raw: bytes) -> str:
    """The decoded task's repr, or why it cannot be decoded."""
    try:
        return repr(app.serializer.loads(raw))
    except TaskDecodeError as exc:
        return f"<undecodable: {exc}>"


def as_dict(app: Delayed, index: int, letter: DeadLetter) -> dict[str, Any]:
    """The JSON shape of one entry (the task both decoded and as hex bytes)."""
    # Error, traceback and arguments are free text: a URL with a password in them is hidden.
    return {
        "index": index, "reason": letter.reason, "func": letter.func, "error": redact(letter.error),
        "attempts": letter.attempts, "time": letter.time, "worker": letter.worker, "queue": letter.queue,
        "task": redact(describe_task(app, letter.task)), "task_hex": letter.task.hex(),
        "traceback": redact(letter.traceback),
    }


def malformed_dict(index: int, raw: bytes, exc: MalformedDeadLetter) -> dict[str, Any]:
    """The JSON shape of an entry that cannot be decoded: why, and its raw text."""
    return {"index": index, "reason": "malformed_entry", "error": f"undecodable entry: {exc}",
            "raw": raw.decode(errors="replace")}


def when(timestamp: float) -> str:
    """A dead letter's time as local ISO 8601, to the second (as a plain number if out of range)."""
    try:
        return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return str(timestamp)


def parse(raw: bytes) -> DeadLetter | MalformedDeadLetter:
    """The entry, or the error saying why it cannot be decoded."""
    try:
        return DeadLetter.from_json(raw)
    except MalformedDeadLetter as exc:
        return exc


def shorten(raw: bytes, limit: int = 60) -> str:
    """The start of an entry's raw text, on one line."""
    text = " ".join(raw.decode(errors="replace").split())
    return text if len(text) <= limit else text[:limit] + "..."


def entry_at(broker: Broker, queue: str, index: int) -> bytes:
    """Raw entry number ``index``, or a one-line error saying what exists."""
    entries = broker.dead_letters(index, index)
    if entries:
        return entries[0]
    count = broker.info().dead
    if count == 0:
        raise DelayedError(f"queue {queue!r} has no dead letters")
    raise DelayedError(f"no dead letter #{index} in queue {queue!r}: it has {count} (numbered 0 to {count - 1}; "
                       "see 'delayed dead list')")


def run_list(args: argparse.Namespace) -> int:
    """One line per entry, or a JSON array: ``--limit`` entries from ``--offset`` (one LRANGE), and how
    many more there are when the list goes on."""
    app, queue, broker = open_queue(args)
    start = args.offset
    entries = broker.dead_letters(start, start + args.limit - 1 if args.limit else -1)
    letters = [parse(raw) for raw in entries]
    more = broker.info().dead - start - len(entries) if args.limit and len(entries) == args.limit else 0
    if more > 0:  # on stderr, so that --json stays one JSON document; never cut short silently
        print(f"(entries #{start} to #{start + len(entries) - 1} of queue {queue!r}, newest first; {more} more: "
              f"--offset {start + len(entries)}, or --limit 0 for all)", file=sys.stderr)
    if args.json:
        print(json.dumps([as_dict(app, start + i, letter) if isinstance(letter, DeadLetter)
                          else malformed_dict(start + i, raw, letter)
                          for i, (raw, letter) in enumerate(zip(entries, letters, strict=True))], indent=2))
        return 0
    if not letters:
        print(f"queue {queue!r} has no dead letters" + (f" from #{start} on" if start else ""))
        return 0
    for i, (raw, letter) in enumerate(zip(entries, letters, strict=True), start):
        if isinstance(letter, MalformedDeadLetter):
            print(f"{i:>4}  undecodable entry ({letter}): {shorten(raw)}")
            continue
        print(f"{i:>4}  {when(letter.time)}  {letter.reason:<14} {letter.func or '?'}  "
              f"(attempts {letter.attempts}) {redact(letter.error)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Every field of one entry, its traceback and its decoded task."""
    app, queue, broker = open_queue(args)
    raw = entry_at(broker, queue, args.index)
    letter = parse(raw)
    if isinstance(letter, MalformedDeadLetter):
        for name, value in malformed_dict(args.index, raw, letter).items():
            print(f"{name:<6}  {value}")
        return 0
    fields = as_dict(app, args.index, letter)
    traceback = fields.pop("traceback")
    fields["time"] = when(letter.time)
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        print(f"{name:<{width}}  {value}")
    if traceback:
        print("traceback:")
        print(traceback.rstrip())
    return 0


def run_requeue(args: argparse.Namespace) -> int:
    """Put one entry's task (or every entry's) back in the queue."""
    _app, queue, broker = open_queue(args)
    if not args.all:
        raw = entry_at(broker, queue, args.index)
        letter = parse(raw)
        if isinstance(letter, MalformedDeadLetter):
            raise DelayedError(f"dead letter #{args.index} of queue {queue!r} is an undecodable entry "
                               f"({letter}): it has no task to requeue")
        if not broker.remove_dead_letter(raw, requeue_task=letter.task):
            raise DelayedError(f"dead letter #{args.index} of queue {queue!r} changed meanwhile; "
                               "run 'delayed dead list' again")
        print(f"requeued dead letter #{args.index} on queue {queue!r}")
        return 0
    entries = broker.dead_letters()
    if not entries:
        raise DelayedError(f"queue {queue!r} has no dead letters")
    # Oldest first, so the tasks go back in the order they died; an entry someone else took is skipped,
    # and so is an undecodable one (reported by its number, and left in place).
    moved, undecodable = 0, []
    for index in reversed(range(len(entries))):
        letter = parse(entries[index])
        if isinstance(letter, MalformedDeadLetter):
            undecodable.append(index)
            continue
        moved += broker.remove_dead_letter(entries[index], requeue_task=letter.task)
    print(f"requeued {moved} dead letter(s) on queue {queue!r}")
    if undecodable:
        numbers = ", ".join(f"#{index}" for index in sorted(undecodable))
        print(f"skipped {len(undecodable)} undecodable entr{'y' if len(undecodable) == 1 else 'ies'} "
              f"({numbers}); see 'delayed dead show N'")
        return 1
    return 0


def run_purge(args: argparse.Namespace) -> int:
    """Delete every entry, only with ``--yes``."""
    _app, queue, broker = open_queue(args)
    if not args.yes:
        count = broker.info().dead
        raise DelayedError(f"this deletes {count} dead letter(s) of queue {queue!r} for good; "
                           "add --yes to confirm")
    print(f"purged {broker.purge_dead_letters()} dead letter(s) from queue {queue!r}")
    return 0
