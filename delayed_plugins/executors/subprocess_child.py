"""The child interpreter of the subprocess executor: ``python -m delayed_plugins.executors.subprocess_child FD``.

It talks to its worker over the socket whose file descriptor is ``FD`` (never stdin/stdout, which task
code may use). The first message is the setup: the import path and ``child_setup`` (imports, registered
function paths, ``allow_any_import``, plugins). From it the child builds the same allowed set of
functions as the worker, fires ``delayed_executor_child_started`` through its own plugin manager, answers
``ready``, then runs one task per request until the worker closes the socket.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("delayed.executor.subprocess")


def build_functions(setup: Mapping[str, Any]) -> Any:
    """The FunctionRegistry the worker described: its allowed modules plus its registered functions."""
    from delayed_core.functions import FunctionRegistry
    from delayed_core.task import PATH_SEPARATOR

    functions = FunctionRegistry(allow_any_import=bool(setup.get("allow_any_import")))
    for module_name in setup.get("imports", ()):
        functions.allow_module(module_name)
    registered = setup.get("functions", {})
    # path -> importable location (older setups sent a list of paths that were their own locations)
    locations = registered if isinstance(registered, Mapping) else {path: path for path in registered}
    for path, location in locations.items():
        module_name, separator, qualname = location.partition(PATH_SEPARATOR)
        if not separator:
            logger.warning("%s has no importable location; this child cannot run it", path)
            continue
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            logger.warning("cannot import the registered function %s in the child: %s", path, exc)
            continue
        functions.register(obj, path)
    return functions


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
    from delayed_core.plugins import make_plugin_manager

    from .awaiting import LoopRunner
    from .calling import run_requested
    from .ipc import ChannelClosed, outcome_to_wire

    try:
        setup = channel.receive()
        sys.path[:] = setup["sys_path"]
        try:
            functions = build_functions(setup)
            plugin_manager = make_plugin_manager(setup.get("plugins", ()))
        except Exception as exc:
            channel.send({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        try:
            plugin_manager.hook.delayed_executor_child_started(executor="subprocess", slot=setup["slot"])
        except Exception:
            logger.exception("a delayed_executor_child_started hook failed; serving anyway")
        channel.send({"ready": os.getpid()})
        runner = LoopRunner()  # one event loop for every async task this child runs
        while True:
            request = channel.receive()
            reply = outcome_to_wire(run_requested(functions.resolve, request, "subprocess", runner.run))
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
