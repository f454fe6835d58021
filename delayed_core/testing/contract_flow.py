"""The broker contract suite, part three: the optional FlowControl role (see :mod:`.contract`).

Skipped for a broker that does not implement :class:`~delayed_core.interfaces.FlowControl`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..interfaces import Broker, FlowControl
from .contract_support import fresh_id

Factory = Callable[[str], Broker]


def _flow(broker_factory: Factory, name: str = "contract") -> FlowControl:
    broker = broker_factory(name)
    if not isinstance(broker, FlowControl):
        pytest.skip(f"{type(broker).__name__} does not implement FlowControl")
    return broker


def test_enqueue_bounded_refuses_a_batch_that_does_not_fit(broker_factory: Factory) -> None:
    flow = _flow(broker_factory)
    broker = broker_factory("contract")
    assert flow.enqueue_bounded([b"a", b"b"], 3)
    assert not flow.enqueue_bounded([b"c", b"d"], 3)  # 2 + 2 > 3: none of the two
    assert len(broker) == 2
    assert flow.enqueue_bounded([b"c"], 3)
    assert len(broker) == 3 and broker.info().max_length == 3
    assert not flow.enqueue_bounded([b"e"], 3)
    assert [broker.dequeue(fresh_id(), 1.0) for _ in range(3)] == [b"a", b"b", b"c"]


def test_throttle_spaces_starts_and_parks_early_tasks(broker_factory: Factory) -> None:
    flow = _flow(broker_factory)
    broker = broker_factory("contract")
    broker.enqueue([b"first", b"second"])
    first, second = fresh_id(), fresh_id()
    assert broker.dequeue(first, 1.0) == b"first"
    assert flow.throttle(first, b"first", "contract-limit", 30.0) == 0.0
    assert broker.dequeue(second, 1.0) == b"second"
    wait = flow.throttle(second, b"second", "contract-limit", 30.0)
    assert 29.0 <= wait <= 30.01  # rounded up to the millisecond
    # the early task is scheduled for its start and held by no one; the first one still runs
    info = broker.info()
    assert info.scheduled == 1 and set(info.processing) == {first}
    # a limit is per key: another function is not slowed down
    broker.enqueue([b"other"])
    other = fresh_id()
    assert broker.dequeue(other, 1.0) == b"other"
    assert flow.throttle(other, b"other", "contract-other-limit", 30.0) == 0.0
