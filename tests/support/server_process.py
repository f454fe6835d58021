"""Start the servers the tests need (redis-server, redis-sentinel) so that they die with the test process.

A pytest that is SIGKILLed (CI's time limit, a second Ctrl-C, an OOM kill) runs no fixture teardown, so
the servers it started would live on, holding ports, memory and temporary folders. On Linux each one is
started with a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``): the kernel kills it as soon
as its parent goes, however that parent ends. Elsewhere servers are started plainly.

The kernel ties that signal to the *thread* that forked the child, not to its process: a server started
from a short-lived thread (a test that adds a cluster node from a helper thread, say) would be killed
the moment that thread returns. So every start goes through one long-lived starter thread, which ends only
when the process does.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: ``PR_SET_PDEATHSIG`` from <linux/prctl.h>
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once in the parent (a forked child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()


def _new_starter() -> ThreadPoolExecutor:
    # One worker thread, created at the first start and kept until the interpreter shuts down.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-server-starter")


_starter = _new_starter()


def _forget_starter_after_fork() -> None:
    """A forked child has no starter thread (only the forking thread survives a fork): make a new one,
    or a start in the child would wait forever for a thread that does not exist."""
    global _starter
    _starter = _new_starter()


os.register_at_fork(after_in_child=_forget_starter_after_fork)


def _die_with(parent: int) -> Callable[[], None]:
    """The ``preexec_fn`` run in the forked child before it executes the server."""

    def arm() -> None:
        assert _prctl is not None
        if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            # The parent died between the fork and the prctl: the signal will never come, so go now.
            os._exit(1)

    return arm


def start_server_process(command: list[str], **popen_args: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(command, **popen_args)``, killed by the kernel when this process dies (Linux)."""
    if _prctl is None:
        return subprocess.Popen(command, **popen_args)
    return _starter.submit(subprocess.Popen, command, preexec_fn=_die_with(os.getpid()), **popen_args).result()
