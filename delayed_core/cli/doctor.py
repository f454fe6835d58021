"""``delayed doctor``: what is wrong with the broker and the queues, and how to fix it.

Broker-neutral: the checks come from plugins (``delayed_doctor_checks``); the Redis plugin checks Redis.
``--repair`` runs the broker's sweeper once for every queue with a repairable finding (it requeues the
tasks of dead workers and repairs notifications, with the same atomic scripts the sweeper uses), says
what it did, and checks again, so the report and the exit status describe the state after the repair.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .common import add_queue_command, build_app, build_config

if TYPE_CHECKING:
    from ..app import Delayed
    from ..doctor import DoctorRequest, Finding


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``doctor`` subcommand."""
    parser = add_queue_command(
        subparsers, "doctor", "check Redis and the queues for problems, with the fix for each",
        "Check the broker and the queues: one line per finding, with its severity and the fix. "
        "Exits 1 when any finding is an error.",
        queues="queue to check (repeatable; default: every queue found in the broker)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--repair", action="store_true",
                        help="run the sweeper once for queues with repairable findings, then check again")
    parser.add_argument("--acl-user", metavar="NAME",
                        help="check this ACL user's rights (connect as an admin: a restricted user may not "
                             "read ACLs); default: the user of the broker URL")
    parser.set_defaults(run=run)


def queues_to_check(app: Delayed, named: list[str] | None) -> list[str]:
    """The named queues, else every queue the broker can discover."""
    if named:
        return sorted(set(named))
    return app.broker(app.config["queue"]).discover_queues()


def collect(app: Delayed, request: DoctorRequest) -> list[Finding]:
    """Every plugin's findings, flattened."""
    answers = app.plugin_manager.hook.delayed_doctor_checks(app=app, request=request)
    return [finding for answer in answers for finding in answer]


def repair(app: Delayed, findings: list[Finding]) -> list[Finding]:
    """Sweep each queue with a repairable finding once; one finding per queue saying what was done."""
    from ..doctor import Finding, Severity

    queues = sorted({f.queue for f in findings if f.repairable and f.queue is not None})
    if not queues:
        return []
    done = []
    for report in app.sweeper(queues).sweep_once():
        done.append(Finding(
            "repair", Severity.INFO,
            f"swept once: requeued {report.requeued} task(s) of dead workers, dead-lettered {report.poisoned} "
            f"poison task(s), {_extra(report.extra)}promoted {report.promoted} due task(s)",
            queue=report.queue, details={"requeued": report.requeued, "poisoned": report.poisoned,
                                         **report.extra, "promoted": report.promoted}))
    return done


def _extra(extra: dict[str, int]) -> str:
    """The broker's repair counters in words: ``added 2 missing notification(s), ``."""
    return "".join(f"removed {-change} surplus {name[:-1]}(s), " if change < 0 else
                   f"added {change} missing {name[:-1]}(s), " for name, change in extra.items())


def run(args: argparse.Namespace) -> int:
    """Check, repair if asked, print the findings; exit 1 when any is an error."""
    from ..doctor import DoctorRequest, Finding, Severity  # imported by the command that uses it only

    config = build_config(args, ())
    app = build_app(config)
    request = DoctorRequest(queues_to_check(app, args.queues), args.acl_user)
    findings = collect(app, request)
    if args.repair:
        repaired = repair(app, findings)
        if repaired:
            findings = repaired + collect(app, request)
    if not findings:
        findings = [Finding("checks", Severity.WARNING,
                            f"no plugin provides checks for the {app.broker_name!r} broker")]
    errors = sum(f.severity is Severity.ERROR for f in findings)
    if args.json:
        report: dict[str, Any] = {"broker": config.redacted_broker_url, "queues": request.queues,
                                  "errors": errors, "warnings": sum(f.severity is Severity.WARNING for f in findings),
                                  "findings": [f.to_dict() for f in findings]}
        print(json.dumps(report, indent=2))
    else:
        for finding in findings:
            print(finding.line())
    return 1 if errors else 0
