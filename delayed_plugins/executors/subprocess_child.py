"""The child interpreter of the subprocess executor: ``python -m delayed_plugins.executors.subprocess_child FD``.

It talks to its worker over the socket whose file descriptor is ``FD`` (never stdin/stdout, which task
code may use). The first message is the setup: the import path and the worker's
:class:`~delayed_core.child_app.ChildSetup`. From it the child builds the worker's app through the same
factory as any process (plugins, ``delayed_app_created``, the allowed functions), fires
``delayed_executor_child_started`` through that app's plugins, answers ``ready``, then runs one task per
request until the worker closes the socket, resolving each task's function here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

logger = logging.getLogger("delayed.executor.subprocess")


def resident_mib() -> float:
    """This process's resident set size in MiB (current on Linux, peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def serve(channel: Any) -> int:
    """Set up from the first message, then run tasks until the worker closes the channel.

    A worker that is gone (its end closed mid-task) ends the child quietly: there is nobody left to tell.
    """
    from delayed_core.child_app import ChildSetup

    from .awaiting import LoopRunner
    from .calling import call_task
    from .ipc import ChannelClosed, outcome_to_wire

    try:
        setup = channel.receive()
        sys.path[:] = setup["sys_path"]
        try:
            app = ChildSetup.from_message(setup["setup"]).build_app()
        except Exception as exc:
            channel.send({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        try:
            app.plugin_manager.hook.delayed_executor_child_started(executor="subprocess", slot=setup["slot"])
        except Exception:
            logger.exception("a delayed_executor_child_started hook failed; serving anyway")
        channel.send({"ready": os.getpid()})
        runner = LoopRunner()  # one event loop for every async task this child runs
        resolve = app.functions.resolve
        while True:
            request = channel.receive()
            outcome = call_task(resolve, request["path"], request["args"], request["kwargs"],
                                run_awaitable=runner.run, executor="subprocess")
            reply = outcome_to_wire(outcome)
            reply["rss_mib"] = resident_mib()
            channel.send(reply)
    except (ChannelClosed, OSError):
        return 0


def main(argv: list[str]) -> int:
    """Entry point: ``argv[1]`` is the inherited socket's file descriptor; ``argv[2]`` and ``argv[3]``, the
    read end of the lifeline and the worker's pid (see :mod:`.lifetime`)."""
    from .ipc import Channel
    from .lifetime import die_with_parent, reap_guard, start_guard

    guard = None
    if len(argv) > 3:
        die_with_parent(int(argv[3]))
        guard = start_guard(int(argv[2]))
    logging.basicConfig(level=os.environ.get("DELAYED_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s[child %(process)d]: %(message)s")
    channel = Channel(socket.socket(fileno=int(argv[1])))
    code = serve(channel)
    reap_guard(guard)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
