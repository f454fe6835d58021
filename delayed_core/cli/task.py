"""``delayed task show ID [--json]`` and ``delayed task cancel ID``: look at and cancel tracked tasks.

``show`` exits 0 for a task it knows and 1 for an unknown id (expired, or never tracked). ``cancel`` exits
0 when the task will not run (removed, or stopped by its worker), 1 when it could not be cancelled
(finished, unknown, or running and not stoppable) and says which.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..handles import TaskHandle
from ..interfaces.tracking import UNKNOWN, TaskRecord
from ..redact import redact
from .common import ArgumentParser, add_broker_flag, build_app, build_config
from .dead import when


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``task`` and its subcommands."""
    parser = subparsers.add_parser("task", help="show or cancel a tracked task by id",
                                   description="Show or cancel a tracked task (see docs/results.md).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=ArgumentParser)
    actions.required = True
    show = actions.add_parser("show", help="print a task's status, times, attempts, worker, result or error",
                              description="Print a tracked task's record.")
    show.add_argument("task_id", metavar="ID", help="the task's id (handle.id)")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_queue_flag(show)
    add_broker_flag(show)
    show.set_defaults(run=run_show)
    cancel = actions.add_parser("cancel", help="cancel a queued, scheduled or running task",
                                description="Remove a queued or scheduled task so that it never runs, or have "
                                            "its worker stop it if it is running.")
    cancel.add_argument("task_id", metavar="ID", help="the task's id (handle.id)")
    add_queue_flag(cancel)
    add_broker_flag(cancel)
    cancel.set_defaults(run=run_cancel)


def add_queue_flag(parser: argparse.ArgumentParser) -> None:
    """``--queue NAME``: where to look for a caller's own id on the cluster key layout."""
    parser.add_argument("--queue", metavar="NAME", default=None,
                        help="the task's queue, for an id of your own (task_id=...) on the Redis cluster key "
                             "layout, which keeps records per queue (default: the queue an id made by pydelayed "
                             "names, else the queue setting); not needed on one Redis")


def open_handle(args: argparse.Namespace) -> TaskHandle:
    """The handle of the id on the command line."""
    app = build_app(build_config(args, ()))
    handle: TaskHandle = app.handle(args.task_id, args.queue)
    return handle


def unknown(record: TaskRecord) -> str:
    """"unknown" and why; where records are kept per queue, the queue looked in."""
    where = f" in queue {record.queue} (records are kept per queue here: --queue NAME looks in another)" \
        if record.queue else ""
    return f"unknown{where} (never tracked, or its record expired)"


def result_text(handle: TaskHandle, record: TaskRecord) -> str:
    """The stored value as ``repr``, or why there is none."""
    if record.result is None:
        return f"(not stored: {record.result_error})" if record.result_error else "(none)"
    try:
        return repr(handle.serializer.loads_value(record.result))
    except Exception as exc:  # a value written by another serializer
        return f"(cannot be decoded: {type(exc).__name__}: {exc})"


def as_dict(handle: TaskHandle, record: TaskRecord) -> dict[str, Any]:
    """The JSON shape of a record (free text redacted: it may hold a URL with a password)."""
    shape = record.as_dict()
    for name in ("message", "traceback", "result_error"):
        shape[name] = redact(shape[name])
    shape["result"] = redact(result_text(handle, record)) if record.status == "succeeded" else None
    return shape


def run_show(args: argparse.Namespace) -> int:
    """Print the record; exit 1 for an unknown id."""
    handle = open_handle(args)
    record = handle.record()
    if args.json:
        print(json.dumps(as_dict(handle, record), indent=2))
        return 1 if record.status == UNKNOWN else 0
    if record.status == UNKNOWN:
        print(f"task {args.task_id}: {unknown(record)}")
        return 1
    shape = as_dict(handle, record)
    print(f"task {record.task_id}: {record.status}")
    print(f"  function  {record.func}  (queue {record.queue})")
    for name in ("enqueued", "started", "finished"):
        value = getattr(record, name)
        print(f"  {name:<9} {when(value) if value is not None else '-'}")
    print(f"  attempts  {record.attempts}")
    print(f"  worker    {record.worker or '-'}")
    if shape["result"] is not None:
        print(f"  result    {shape['result']}")
    if record.error_type:
        print(f"  error     {record.error_type}: {shape['message']}")
        if record.traceback:
            print("  " + shape["traceback"].rstrip().replace("\n", "\n  "))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """Cancel; exit 1 (saying why) when the task could not be cancelled."""
    handle = open_handle(args)
    if handle.cancel():
        print(f"task {args.task_id}: cancelled; it will not run")
        return 0
    record = handle.record()
    status = record.status
    why = {UNKNOWN: f"it is {unknown(record)}",
           "running": "it is running and could not be stopped (a plain function under the thread executor "
                      "runs to its end)"}.get(status, f"it is {status} already")
    print(f"task {args.task_id}: not cancelled: {why}")
    return 1
