"""Stop signals: a process's handlers installed for the length of a run, the previous ones put back after.

Workers, the sweeper and the supervisor all stop gracefully on these signals, and all must leave the
handlers as they found them: an embedding program (a test, a web server starting a worker in-process)
keeps its own handlers once the run returns.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

#: Signals that stop a worker, or a supervisor, gracefully. Read by name: Windows has no SIGHUP, and
#: producers there must still be able to import the package.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))

Handler = Callable[[int, FrameType | None], object]


@contextlib.contextmanager
def handling(handler: Handler, signals: Iterable[int] = STOP_SIGNALS, install: bool = True) -> Iterator[None]:
    """Run the block with ``handler`` installed for ``signals``; restore the previous handlers after.

    Nothing is installed when ``install`` is false or outside the main thread (Python allows signal
    handlers only there: a worker run from another thread is stopped with ``stop()`` instead).
    """
    previous = {}
    if install and threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
