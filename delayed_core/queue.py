"""Queue: the producer's handle on one queue, and the enqueue steps it shares with AsyncQueue."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypeVar

from .bounded import bounded_broker, check_max_length, push_bounded
from .interfaces import Broker, Serializer
from .notify import Notifier
from .scheduling import due_time
from .task import PyTask, Task

if TYPE_CHECKING:
    from .handles import TaskHandle

R = TypeVar("R", covariant=True)


class Writer(Protocol[R]):
    """What a batch is written through: a Broker (answers None) or an AsyncBroker (answers a coroutine)."""

    def enqueue(self, tasks: Sequence[bytes]) -> R: ...

    def schedule(self, tasks: Sequence[bytes], due: float) -> R: ...


class Queue:
    """Enqueues tasks on one named queue. Thread-safe; create it with ``app.queue(name)``.

    Every call is one broker round trip: ``enqueue_many`` writes its whole batch at once.

    :param max_length: bound on the tasks waiting in the queue (None: unbounded). Enqueueing past it
        raises :class:`~delayed_core.errors.QueueFull`; tasks scheduled for later are not counted.
    """

    def __init__(self, name: str, broker: Broker, serializer: Serializer, notifier: Notifier,
                 max_length: int | None = None) -> None:
        self.max_length = check_max_length(max_length)
        # checked here, not at the first enqueue: a broker that cannot bound a queue fails at once
        self._bound = None if self.max_length is None else (bounded_broker(broker), self.max_length)
        self.name = name
        self.broker = broker
        self.serializer = serializer
        self._notifier = notifier

    def enqueue(self, task: Task, *, delay: float | None = None, eta: dt.datetime | None = None,
                track: bool = False, block: float | None = None, task_id: str | None = None, unique_for: float = 0,
                result_ttl: int | None = None) -> TaskHandle | None:
        """Add one task; with ``delay`` (seconds) or ``eta`` (datetime) it waits until then.

        With ``track`` (or a ``task_id``) a PyTask is tracked and a :class:`~delayed_core.handles.TaskHandle`
        is returned (see docs/results.md); otherwise its bytes are exactly delayed 1.2's and None is
        returned. Raises BrokerUnavailable when the broker cannot be reached: the task was then not enqueued. On a
        bounded queue that is full, raises QueueFull at once, or after waiting up to ``block`` seconds
        for room.
        """
        if isinstance(task, PyTask) and (track or task_id is not None or unique_for):
            return self._tracked([task], delay, eta, None if task_id is None else [task_id], unique_for,
                                 result_ttl)[0]
        self.enqueue_many((task,), delay=delay, eta=eta, block=block)
        return None

    def enqueue_many(
        self, tasks: Iterable[Task], *, delay: float | None = None, eta: dt.datetime | None = None,
        block: float | None = None, track: bool = False, task_ids: Sequence[str | None] | None = None,
        unique_for: float = 0, result_ttl: int | None = None,
    ) -> list[TaskHandle] | None:
        """Add many tasks in one round trip, atomically: the default plugin (Redis) writes the whole batch
        in one MULTI/EXEC, so either every task is enqueued or none is. On a bounded queue the whole batch
        must fit (else QueueFull, and none is enqueued); ``block`` waits up to that many seconds for room.

        With ``track`` (or ``task_ids``, one per task, None for a random one) every task must be a PyTask;
        the batch is still one round trip (one script), and a handle per task is returned, in order
        (see :meth:`enqueue` for ``unique_for`` and ``result_ttl``). Otherwise None is returned.
        """
        if track or task_ids is not None or unique_for:
            return self._tracked(list(tasks), delay, eta, task_ids, unique_for, result_ttl)
        batch = Batch(self._notifier, self.name, self.serializer, tasks, delay, eta)
        if batch.tasks:
            with batch.reported():
                if self._bound is not None and due_time(delay, eta) is None:
                    push_bounded(*self._bound, self.name, [self.serializer.dumps(t) for t in batch.tasks], block)
                else:
                    batch.send(self.broker)
        return None

    def _tracked(self, tasks: list[Task], delay: float | None, eta: dt.datetime | None,
                 task_ids: Sequence[str | None] | None, unique_for: float, result_ttl: int | None) -> list[TaskHandle]:
        submit = _submit_module()
        if not tasks:
            return []
        return submit.Tracked(submit.tracker_or_error(self.broker), self._notifier, self.name, self.serializer,
                              submit.only_py_tasks(tasks), due_time(delay, eta), task_ids, unique_for,
                              result_ttl).write()

    def __len__(self) -> int:
        """Tasks waiting to be taken (not counting scheduled or running ones)."""
        return len(self.broker)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"


@functools.cache
def _submit_module() -> ModuleType:
    """``delayed_core.submit`` (task handles, a plugin-like layer over the queue, which imports this module:
    imported on first use, then kept, since an import statement costs a tracked enqueue a microsecond)."""
    from . import submit

    return submit


class Batch:
    """The tasks of one ``enqueue_many`` call, with the hooks around their write (sync or async).

    :param tasks: the caller's tasks; :attr:`tasks` holds them with the ``meta`` fields plugins add.
    """

    def __init__(self, notifier: Notifier, queue: str, serializer: Serializer, tasks: Iterable[Task],
                 delay: float | None, eta: dt.datetime | None) -> None:
        self.notifier = notifier
        self.queue = queue
        self.serializer = serializer
        self.tasks = with_plugin_meta(notifier, queue, tasks)
        self.delay = delay
        self.eta = eta

    def send(self, writer: Writer[R]) -> R:
        """Encode the tasks and write them in one call: ``enqueue``, or ``schedule`` with a delay or eta."""
        dumps = self.serializer.dumps
        data = [dumps(task) for task in self.tasks]
        due = due_time(self.delay, self.eta)
        return writer.enqueue(data) if due is None else writer.schedule(data, due)

    @contextlib.contextmanager
    def reported(self) -> Iterator[None]:
        """Around the write: ``delayed_task_enqueued`` per task when it succeeds, else
        ``delayed_task_enqueue_failed`` per task and the error propagates."""
        try:
            yield
        except Exception as exc:
            for task in self.tasks:
                self.notifier.delayed_task_enqueue_failed(queue=self.queue, task=task, error=exc)
            raise
        for task in self.tasks:
            self.notifier.delayed_task_enqueued(queue=self.queue, task=task)


def with_plugin_meta(notifier: Notifier, queue: str, tasks: Iterable[Task]) -> list[Task]:
    """The tasks to write: each PyTask carries the ``meta`` fields plugins add (``delayed_task_enqueuing``).

    Tasks get copies, never edits: a caller enqueueing one PyTask object twice gets fresh fields each time.
    """
    result = list(tasks)
    for index, task in enumerate(result):
        if isinstance(task, PyTask):
            added: dict[str, object] = {}
            for answer in notifier.delayed_task_enqueuing(queue=queue, task=task):
                added.update(answer)
            if added:
                result[index] = PyTask(task.func_path, task.args, task.kwargs, task.retry, {**task.meta, **added})
    return result
