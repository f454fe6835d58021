"""Tying task processes to their worker: they die with it, and their own children die with them.

- **Parent death.** On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill a child the moment
  its parent goes, even a child stuck in C code. The "parent" is the *thread* that started the child,
  so callers start children from a thread that lives as long as the worker. Everywhere, a *lifeline*
  backs it up: a pipe whose write end only the worker holds; a thread in the child waits on the read
  end and kills the child's process group when it reads end-of-file (the worker is gone).
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
import sys
import threading

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a child: be SIGKILLed when ``parent`` exits (Linux); exit at once if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


def watch_lifeline(fd: int) -> None:
    """In a child: kill our whole process group when ``fd`` reaches end-of-file (the worker is gone).

    A byte on the lifeline means the worker retires us normally: the watcher then just stops watching.
    """

    def watch() -> None:
        try:
            data = os.read(fd, 1)
        except OSError:
            data = b""
        if not data:
            kill_group(os.getpgrp(), signal.SIGKILL)
            os._exit(1)

    threading.Thread(target=watch, name="delayed-lifeline", daemon=True).start()


def kill_group(pgid: int, signum: int) -> None:
    """Signal every process of group ``pgid``; nothing to do when it is already empty."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def exited_unreaped(pid: int) -> bool:
    """True when child ``pid`` has exited, without reaping it (so its pid and group stay reserved).

    Where ``waitid`` does not exist (macOS) it answers False, and callers fall back to signalling the
    group after the fact.
    """
    if not hasattr(os, "waitid"):
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
