"""Prefetch for the memory broker: the Batches role, with the semantics of the Redis script
(``delayed_redis/lua/release_take_batch.lua``). Mixed into MemoryBroker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delayed_core.interfaces.batches import Batches, Finished, Held


class MemoryBatches(Batches):
    """:class:`Batches` over the memory broker's store (one lock makes every call atomic)."""

    store: Any
    _forget: Any
    _push: Any
    _take_first: Any
    _held_in: Any

    def release_take_batch(self, done: Sequence[Finished], unstarted: Sequence[Held], take_ids: Sequence[str],
                           queues: Sequence[str]) -> list[Held]:
        # Imported here: this module loads with the memory broker's plugin, in every command (delayed info).
        from delayed_core.results import tracker_for

        with self.store.cond:  # re-entrant: the tracker's release below takes it too
            for finished in done:
                held, finish = finished.held, finished.finish
                tracker = tracker_for(self) if finish is not None else None  # type: ignore[arg-type]
                if tracker is not None and finish is not None:
                    tracker.release_and_take(held.worker_id, held.queue, (held.queue,), False, finish)
                else:
                    self._forget(self.store.queue(held.queue), held.worker_id)
            for held in reversed(unstarted):  # the last first: each goes in front of the ones after it
                state = self.store.queue(held.queue)
                task = state.processing.pop(held.worker_id, None)
                if task is not None:
                    self._push(state, (task,), front=True)
            taken: list[Held] = []
            for worker_id in take_ids:
                if self._held_in(worker_id, queues) is not None:
                    continue
                got = self._take_first(worker_id, queues)
                if got is None:
                    break
                taken.append(Held(worker_id, *got))
            return taken

    def held_by(self, worker_ids: Sequence[str], queues: Sequence[str]) -> list[Held]:
        with self.store.cond:
            found = ((worker_id, self._held_in(worker_id, queues)) for worker_id in worker_ids)
            return [Held(worker_id, *held) for worker_id, held in found if held is not None]
