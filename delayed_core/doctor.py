"""What ``delayed doctor`` reports: findings, each with a severity and the fix.

The command is broker-neutral: the checks come from plugins through the ``delayed_doctor_checks`` hook
(the default plugin, Redis, provides its own). A finding a broker's sweeper can repair says so
(``repairable``); ``delayed doctor --repair`` then runs that sweeper once for the queue and checks again.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``error`` makes ``delayed doctor`` exit non-zero."""

    OK = "ok"  # checked, nothing wrong
    INFO = "info"  # worth knowing, nothing to fix
    WARNING = "warning"  # works, but loses speed, safety or visibility
    ERROR = "error"  # tasks can be lost or stuck


@dataclass(frozen=True)
class Finding:
    """One result of one check.

    :param check: a short stable name (``maxmemory-policy`` of the default plugin, Redis ...), for scripts.
    :param severity: how bad it is.
    :param message: what was found, one line.
    :param fix: what to do about it, one line ("" when nothing is to be done).
    :param queue: the queue it is about, or None for the whole broker.
    :param repairable: True when running the broker's sweeper once fixes it (``--repair``).
    :param details: extra machine-readable values for ``--json``.
    """

    check: str
    severity: Severity
    message: str
    fix: str = ""
    queue: str | None = None
    repairable: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """The text form: ``ERROR maxmemory-policy: ... (fix: ...)``."""
        where = f" [{self.queue}]" if self.queue is not None else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.severity.value.upper():<7} {self.check}{where}: {self.message}{fix}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


@dataclass(frozen=True)
class DoctorRequest:
    """What ``delayed doctor`` was asked to look at.

    :param queues: the queues to check (the command discovers them when none were named).
    :param acl_user: whose ACL rights to check; None for the user the broker URL connects as.
    """

    queues: list[str]
    acl_user: str | None = None
