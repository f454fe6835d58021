"""What a worker checks and says before it serves: its queues agree on the process settings, and a
banner lists the queues in priority order, the executor, the slots and every function it may run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import Config
from .errors import ConfigError

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("delayed.worker")

#: settings of the whole process: every queue one worker serves must agree on them (and on every setting
#: an executor declared: ``Setting.executor``)
PROCESS_SETTINGS = ("executor", "slots", "prefetch")


def queue_configs(config: Config, queues: Sequence[str]) -> dict[str, Config]:
    """Each queue's effective config, highest priority first (a queue named twice counts once).

    Refuses an empty list, and queues whose ``[queues.NAME]`` tables disagree on a setting of the process.
    """
    configs = {queue: config.for_queue(queue) for queue in queues}
    if not configs:
        raise ConfigError("a worker needs at least one queue")
    first, *others = configs
    keys = [*PROCESS_SETTINGS, *(setting.name for setting in config.settings if setting.executor)]
    for queue in others:
        for key in keys:
            if configs[queue][key] != configs[first][key]:
                raise ConfigError(
                    f"queues {first!r} and {queue!r} set {key} differently ({configs[first][key]!r} vs "
                    f"{configs[queue][key]!r}); one worker has one {key}: serve them with separate workers"
                )
    return configs


def allowed_lines(worker: Worker) -> list[str]:
    """One line per function or module the worker may run (empty when it may run nothing)."""
    functions = worker.functions
    if functions.allow_any_import:
        return ["ANY importable function (allow_any_import is on)"]
    lines = list(functions.registered)
    lines += [f"{module}:* (the public functions defined in module {module})" for module in functions.modules]
    return lines


def log_banner(worker: Worker) -> None:
    """Log, at INFO, what the worker serves and runs; a WARNING when it may run nothing at all."""
    queues = worker.queues
    served = (f"queue {queues[0]!r}" if len(queues) == 1
              else "queues " + ", ".join(repr(queue) for queue in queues) + " (highest priority first)")
    prefetch = worker.config["prefetch"]
    logger.info("worker serving %s with %d slot(s)%s, executor %s, ids %s", served, len(worker.slots),
                f" prefetching {prefetch} task(s) each" if prefetch > 1 else "", worker.config["executor"],
                ", ".join(worker.worker_ids))
    allowed = allowed_lines(worker)
    if allowed:
        logger.info("[tasks]\n%s", "\n".join(f"  . {line}" for line in allowed))
    else:
        logger.warning("this worker may run no function: every task it takes will be dead-lettered as "
                       "not_allowed. Register functions with @app.task or name their modules with "
                       "--import MODULE")
