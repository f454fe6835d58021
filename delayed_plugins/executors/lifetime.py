"""Tying task processes to their worker: they die with it, and their own children die with them.

- **Parent death.** On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill a child the moment
  its parent goes, even a child stuck in C code. The "parent" is the *thread* that started the child,
  so callers start children from a thread that lives as long as the worker.
- **Lifeline.** Everywhere, and for the programs a task started (which the signal above does not reach),
  a pipe whose write end only the worker holds. The child hands the read end to a *guard*, a ``sh`` in
  its process group that waits for a line: end-of-file (the worker is gone, even SIGKILLed) makes it kill
  the whole group; the goodbye line the worker writes when it retires the child makes it just exit. A
  separate process, so it acts even while the child's own threads are stuck.
- **Process groups.** A task process leads a process group of its own, so that at its hard time limit the
  supervisor signals the group: programs the task started (``sleep 1000``) go with it. The final SIGKILL
  to the group is sent *before* the leader is reaped: an unreaped leader keeps its pid reserved, so the
  group id cannot meanwhile be reused by an unrelated process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a child: be SIGKILLed when ``parent`` exits (Linux); exit at once if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


#: What the worker writes to a child's lifeline when it lets the child go normally.
GOODBYE = b"bye\n"
#: The guard: wait for the goodbye line; on end-of-file, SIGKILL our process group (kill's 0 means that).
_GUARD = "read -r _ || kill -KILL 0"


def start_guard(lifeline: int) -> subprocess.Popen[bytes]:
    """In a child that leads its process group: start the guard on ``lifeline`` (its read end), which is
    then closed here. The caller reaps the guard when it exits normally (see :func:`reap_guard`)."""
    try:
        return subprocess.Popen(["/bin/sh", "-c", _GUARD], stdin=lifeline, stdout=subprocess.DEVNULL)
    finally:
        os.close(lifeline)


def reap_guard(guard: subprocess.Popen[bytes] | None, wait: float = 1.0) -> None:
    """Collect the guard after the worker said goodbye (it exits at once), so it leaves no zombie."""
    if guard is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            guard.wait(wait)


def kill_group(pgid: int, signum: int) -> None:
    """Signal every process of group ``pgid``; nothing to do when it is already empty."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


#: Whether :func:`exited_unreaped` can tell (``waitid`` is missing on macOS).
CAN_WAIT_UNREAPED = hasattr(os, "waitid")


def exited_unreaped(pid: int) -> bool:
    """True when child ``pid`` has exited, without reaping it (so its pid and group stay reserved).

    Only where :data:`CAN_WAIT_UNREAPED`; elsewhere it always answers False.
    """
    if not CAN_WAIT_UNREAPED:
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
