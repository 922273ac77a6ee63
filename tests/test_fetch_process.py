"""The service's side of the fetch-process protocol, over a real pipe, with this test as the child."""

from __future__ import annotations

import multiprocessing
from collections import deque

from streams.config import KafkaConfig
from streams.fetch import FetchProcess


def _service_side(events: list) -> tuple[FetchProcess, multiprocessing.connection.Connection]:
    """A FetchProcess wired to one end of a pipe (no child started); the other end plays the child."""
    service_end, child_end = multiprocessing.Pipe()
    fetch = object.__new__(FetchProcess)
    fetch.topic, fetch._config, fetch._timeout_s = "db-access", KafkaConfig(), 0.2
    fetch._on_revoked = lambda partitions: events.append(("revoked", sorted(partitions)))
    fetch._on_assigned = lambda partitions: events.append(("assigned", sorted(partitions)))
    fetch._waiting, fetch._assigned, fetch._highwater, fetch._pipe = deque(), set(), {}, service_end
    return fetch, child_end


def _sent(child_end) -> list:
    out = []
    while child_end.poll(0.05):
        out.append(child_end.recv())
    return out


def test_batches_come_in_order_with_the_rebalance_notices_and_each_is_acknowledged():
    events: list = []
    fetch, child = _service_side(events)
    child.send(("assigned", [0, 1]))
    child.send(("batch", 0, [(7, b"k", b'{"a":1}', [])], 10))
    child.send(("revoked", [1]))
    batch = fetch.poll()
    assert events == [("assigned", [0, 1])] and fetch.assignment() == {0, 1}
    [record] = batch[0]
    assert (record.topic, record.partition, record.offset, record.key, record.value) == ("db-access", 0, 7, b"k", b'{"a":1}')
    assert fetch.lag({0: 8}) == {0: 2}
    assert fetch.poll() == {}                                  # the revocation, then nothing within the timeout
    assert events[-1] == ("revoked", [1]) and fetch.assignment() == {0}
    assert _sent(child) == [("done",), ("ack",), ("done",)]


def test_a_hold_keeps_batches_and_a_revocation_drops_those_of_its_partitions_giving_their_credit_back():
    events: list = []
    fetch, child = _service_side(events)
    fetch._assigned = {0, 1}
    child.send(("batch", 0, [(1, None, b"x", [])], 5))
    child.send(("batch", 1, [(1, None, b"y", [])], 5))
    child.send(("revoked", [1]))
    fetch.hold()
    assert events == [("revoked", [1])]
    assert _sent(child) == [("ack",), ("done",)]               # partition 1's kept batch: dropped, credit back
    assert list(fetch.poll()) == [0]                           # partition 0's kept batch comes after the hold
    assert _sent(child) == [("ack",)]


def test_commits_and_seeks_are_sent_in_the_order_the_service_makes_them():
    fetch, child = _service_side([])
    fetch.commit({0: 12})
    fetch.seek(1, 40)
    fetch.commit({})
    assert _sent(child) == [("commit", {0: 12}), ("seek", 1, 40)]
