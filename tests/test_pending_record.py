"""A plain ``.delay()``'s pending record is one string (``lua/_pending.lua``) that holds the queue, the
function and the task bytes by their lengths: every script that reads a pending record gets them back
whole, whatever bytes the names hold, and a retry or a cancel keeps them."""

from __future__ import annotations

from delayed_core.interfaces import Broker
from delayed_core.interfaces.tracking import REMOVED, STOPPING, Finish, Submission, TaskTracker
from delayed_core.results import tracker_for
from tests.conftest import Backend

#: names holding what the string's own head holds: digits, spaces, newlines, and a multi-byte character
QUEUE = "q\n5 7\n é"
FUNC = "mod\n3 4\n:f é"


def _tracker_and_broker(backend: Backend) -> tuple[TaskTracker, Broker]:
    broker = backend.app().broker(QUEUE)
    tracker = tracker_for(broker)
    assert tracker is not None
    return tracker, broker


def _submit(tracker: TaskTracker, task_id: str, data: bytes) -> None:
    assert tracker.submit(Submission(task_id, QUEUE, FUNC, data, 60.0)) == (True, "queued")


def test_odd_names_are_read_back_whole_and_kept_by_a_cancel(backend: Backend) -> None:
    tracker, broker = _tracker_and_broker(backend)
    _submit(tracker, "t1", b"task\n1 2\n")
    assert backend.client.type("delayed_task:t1") == b"string"
    record = tracker.read("t1")
    assert (record.status, record.queue, record.func) == ("queued", QUEUE, FUNC) and record.enqueued
    assert tracker.cancel("t1", 60) == REMOVED and len(broker) == 0
    cancelled = tracker.read("t1")
    assert (cancelled.status, cancelled.queue, cancelled.func, cancelled.enqueued) == (
        "cancelled", QUEUE, FUNC, record.enqueued)
    assert 0 < backend.client.pttl("delayed_task:t1") <= 60_000


def test_a_running_task_is_asked_to_stop_and_its_retry_keeps_the_enqueue(backend: Backend) -> None:
    tracker, broker = _tracker_and_broker(backend)
    _submit(tracker, "t2", b"first")
    enqueued = tracker.read("t2").enqueued
    assert broker.claim_worker_id("w-1", 30)
    assert broker.dequeue("w-1", 1.0) == b"first"
    assert tracker.cancel("t2", 60) == STOPPING
    assert backend.client.type("delayed_task:t2") == b"string"  # a stop request changes nothing in it
    tracker.requeue("w-1", QUEUE, b"second", 0.0, Finish("t2", {"s": "failed", "a": 1, "et": "E"}, 60.0))
    record = tracker.read("t2")
    assert (record.status, record.queue, record.func, record.enqueued) == ("failed", QUEUE, FUNC, enqueued)
    assert tracker.cancel("t2", 60) == REMOVED and len(broker) == 0  # the retry's bytes are found


def test_a_callers_id_naming_a_pending_string_is_refused(backend: Backend) -> None:
    """track_submit.lua reads the record of a caller's id (record_state): a plain .delay()'s string too."""
    tracker, broker = _tracker_and_broker(backend)
    _submit(tracker, "t3", b"first")
    again = Submission("t3", QUEUE, FUNC, b"second", 60.0, None, -1)
    assert tracker.submit(again) == (False, "queued") and len(broker) == 1
    assert backend.client.type("delayed_task:t3") == b"string"
