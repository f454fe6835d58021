"""A third-party check for ``delayed doctor`` (loaded with ``--plugin tests.support.doctor_plugin``)."""

from __future__ import annotations

from delayed_core import hookimpl
from delayed_core.app import Delayed
from delayed_core.doctor import DoctorRequest, Finding, Severity


@hookimpl
def delayed_doctor_checks(app: Delayed, request: DoctorRequest) -> list[Finding] | None:
    """One finding per checked queue, so the test sees the request arrive."""
    return [Finding("third-party", Severity.ERROR, f"checked {queue}", "nothing", queue) for queue in request.queues]
