"""Kafka fetching in a child process, behind the `EventConsumer` interface.

kafka-python parses every record in Python: on the engine's core that is a fifth
of the service's time, and the fetch waits for the broker in between. Here a
child process owns the `EventConsumer` (group membership, fetches, commits) and
pipes each partition's batch to the service as (offset, key, value, headers);
the service's core only decodes and scores (`benchmarks/fetch_process.py`
measures the gain). What stays exactly as in-process:

* ordering: one pipe carries batches and rebalance notices in the order the
  consumer produced them, so every batch before a revocation is processed
  before the service hears of it;
* rebalances: the child's listener sends the notice and waits, carrying out
  the service's commits and seeks, until the service has checkpointed or
  restored (`done`): commits happen inside the callback, as kafka-python needs;
* holding a batch: the child sends at most `CREDITS` batches the service has
  not taken; out of credit it pauses its partitions and keeps polling, so the
  group membership survives a hold of any length;
* commits are carried out in the order sent, so the last one before `close`
  is on the broker before the child leaves the group.

The child ignores SIGINT and SIGTERM (the service decides when to stop) and
exits when the service's end of the pipe closes. If it dies, the service's next
poll starts another one, which rejoins the group; the assignment that follows
restores state from the last checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import NamedTuple

from streams.config import KafkaConfig

log = logging.getLogger(__name__)
CREDITS = 4                  # batches the child may send ahead of the service
_CONTEXT = multiprocessing.get_context("spawn")      # no fork of a process with threads running


class Record(NamedTuple):
    """The fields of a kafka-python ConsumerRecord the service reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list


class FetchProcess:
    """`EventConsumer`'s interface, with the consumer itself in a child process."""

    def __init__(self, config: KafkaConfig, on_revoked: Callable[[set[int]], None],
                 on_assigned: Callable[[set[int]], None], topic: str | None = None) -> None:
        self.topic = topic or config.events_topic
        self._config = config
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        self._timeout_s = config.poll_timeout_ms / 1000
        self._waiting: deque = deque()           # batches read while the service held its batch
        self._assigned: set[int] = set()
        self._highwater: dict[int, int] = {}
        self._start()

    def _start(self) -> None:
        self._pipe, child_end = _CONTEXT.Pipe()
        self._child = _CONTEXT.Process(target=fetch_loop, args=(self._config, self.topic, child_end),
                                       name="exfil-fetch", daemon=True)
        self._child.start()
        child_end.close()

    # -- what the service calls ---------------------------------------------------

    def poll(self) -> dict[int, list]:
        """One partition's batch (or nothing within the poll timeout); rebalance notices on the way
        are handled first, by the service's callbacks."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            if self._waiting:
                message = self._waiting.popleft()
            elif self._pipe.poll(max(0.0, deadline - time.monotonic())):
                message = self._receive()
            else:
                return {}
            if message[0] == "batch":
                self._send(("ack",))
                return self._batch(message)
            self._handle(message)

    def hold(self) -> None:
        """While the service holds a batch: take rebalance notices, keep batches for later."""
        while self._pipe.poll(0):
            message = self._receive()
            if message[0] == "batch":
                self._waiting.append(message)
            else:
                self._handle(message)

    def release(self) -> None:
        return None

    def pause_partitions(self, partitions: list[int]) -> None:
        if partitions:
            self._send(("pause", list(partitions)))

    def resume_partitions(self, partitions: list[int]) -> None:
        if partitions:
            self._send(("resume", list(partitions)))

    def seek(self, partition: int, offset: int) -> None:
        self._send(("seek", partition, offset))

    def commit(self, offsets: dict[int, int]) -> None:
        if offsets:
            self._send(("commit", dict(offsets)))

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        """From the high-water marks the child saw with each batch."""
        return {p: max(0, self._highwater[p] - position) for p, position in positions.items()
                if self._highwater.get(p) is not None}

    def assignment(self) -> set[int]:
        return set(self._assigned)

    def close(self) -> None:
        """Commits already sent are made first; then the child leaves the group and exits."""
        try:
            self._send(("close",))
        except OSError:
            pass
        self._child.join(timeout=max(5.0, self._config.session_timeout_ms / 1000))
        if self._child.is_alive():
            self._child.terminate()
        self._pipe.close()

    # -- the pipe -------------------------------------------------------------------

    def _batch(self, message: tuple) -> dict[int, list]:
        _, partition, records, highwater = message
        self._highwater[partition] = highwater
        return {partition: [Record(self.topic, partition, *fields) for fields in records]}

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "revoked":
            self._on_revoked(set(message[1]))
            self._assigned -= set(message[1])
            self._drop_waiting(set(message[1]))
            self._send(("done",))
        elif kind == "assigned":
            self._assigned = set(message[1])
            self._on_assigned(set(message[1]))
            self._send(("done",))
        elif kind == "error":
            raise RuntimeError(f"Kafka {message[1]} in the fetch process: {message[2]}")

    def _drop_waiting(self, partitions: set[int]) -> None:
        """Batches kept during a hold for partitions now revoked: their next owner reads them again
        from the last commit. Each gives its credit back."""
        kept = deque(m for m in self._waiting if m[1] not in partitions)
        for _ in range(len(self._waiting) - len(kept)):
            self._send(("ack",))
        self._waiting = kept

    def _receive(self) -> tuple:
        try:
            return self._pipe.recv()
        except (EOFError, OSError):
            self._restart("it closed its pipe")
            raise RuntimeError("the fetch process ended; another one is starting") from None

    def _send(self, message: tuple) -> None:
        try:
            self._pipe.send(message)
        except OSError:
            self._restart("its pipe is broken")
            raise RuntimeError("the fetch process ended; another one is starting") from None

    def _restart(self, why: str) -> None:
        log.error("the Kafka fetch process (pid %s) stopped (%s); starting another", self._child.pid, why)
        self._child.join(timeout=1)
        self._pipe.close()
        self._waiting.clear()
        self._assigned = set()
        self._start()


# -- the child ------------------------------------------------------------------------


def fetch_loop(config: KafkaConfig, topic: str, pipe: Connection) -> None:
    """The child: poll, send batches while there is credit, carry out the service's commands."""
    from streams.kafka import EventConsumer

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = _Child(pipe)
    consumer = EventConsumer(config, child.revoked, child.assigned, topic=topic)
    child.consumer = consumer
    try:
        while child.run_commands():
            if child.credits <= 0:
                consumer.hold()                  # paused: polls for membership, returns nothing
                time.sleep(0.01)
                continue
            consumer.release()
            try:
                batches = consumer.poll()
            except Exception as exc:             # broker gone, coordinator moving: the service counts it
                pipe.send(("error", "poll", str(exc)[:300]))
                time.sleep(1.0)
                continue
            for partition, records in batches.items():
                pipe.send(("batch", partition, [(r.offset, r.key, r.value, r.headers) for r in records],
                           consumer.highwater(partition)))
                child.credits -= 1
    except (EOFError, OSError):                  # the service is gone
        return
    finally:
        child.closing = True
        consumer.close()


class _Child:
    """The child's side of the protocol: credits, commands, and the rebalance hand-shake."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe, self.credits, self.closing = pipe, CREDITS, False
        self.consumer = None

    def run_commands(self) -> bool:
        """Carry out what has arrived; False once the service said close."""
        while not self.closing and self.pipe.poll(0):
            self._apply(self.pipe.recv())
        return not self.closing

    def revoked(self, partitions: set[int]) -> None:
        self._hand_over("revoked", partitions)

    def assigned(self, partitions: set[int]) -> None:
        self._hand_over("assigned", partitions)

    def _hand_over(self, kind: str, partitions: set[int]) -> None:
        """Tell the service and carry out its commands until it is done (commits inside the callback)."""
        if self.closing:
            return
        self.pipe.send((kind, sorted(partitions)))
        while not self.closing:                  # the service may close instead of answering
            message = self.pipe.recv()
            if message[0] == "done":
                return
            self._apply(message)

    def _apply(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ack":
            self.credits += 1
        elif kind == "commit":
            try:
                self.consumer.commit(message[1])
            except Exception as exc:             # the checkpoint holds the offsets; the next commit catches up
                self.pipe.send(("error", "commit", str(exc)[:300]))
        elif kind == "seek":
            self.consumer.seek(message[1], message[2])
        elif kind == "pause":
            self.consumer.pause_partitions(message[1])
        elif kind == "resume":
            self.consumer.resume_partitions(message[1])
        elif kind == "close":
            self.closing = True
