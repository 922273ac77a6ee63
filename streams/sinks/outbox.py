"""A durable outbox per HTTP sink, and the background delivery that drains it.

Why this exists: an HTTP receiver (a webhook, Alertmanager) can be down for
minutes, while the service must acknowledge a batch of alerts before it
commits Kafka offsets. So a sink's `deliver` only appends the alerts to its
outbox, a SQLite file in WAL mode with `synchronous=FULL` (an append that has
returned survives a crash or power loss), and `OutboxDelivery` posts them from
a daemon thread, deleting each one only after the receiver answered 2xx.

Delivery is at least once: a crash between the receiver's 2xx and `done`
re-sends that alert after a restart, so payloads carry an idempotency key
(see the sinks). Alerts that keep failing wait with exponential backoff and
jitter, each on its own schedule, so one rejected alert never holds back the
others; while the receiver keeps failing, delivery also pauses as a whole so a
down receiver gets one request per backoff period, not one per pending alert.

What this module must never do: log or put into an exception message the
payloads it holds. They are alerts and may carry personal data; log the label
a sink gives (an alert id) and the receiver's status only.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from streams.metrics import ServiceMetrics
from streams.sinks import SinkError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_next_attempt ON outbox (next_attempt_at, id);
"""

# Alerts named in one failure log line (an Alertmanager batch holds up to 64).
_NAMED_IN_LOG = 5


class DeliveryError(RuntimeError):
    """One delivery attempt failed (receiver unreachable, timed out, or answered non-2xx)."""


def backoff_delay(attempts: int, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th consecutive failure (1 = the first).

    Exponential (`initial_s * 2**(attempts-1)`), capped at `max_s`, with "equal
    jitter": a uniform draw in the upper half of that, so many instances that
    failed together do not retry together.
    """
    ceiling = min(max_s, initial_s * 2 ** min(max(attempts - 1, 0), 62))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


class Outbox:
    """A durable FIFO of payloads waiting for delivery, in one SQLite file.

    One connection guarded by a lock, so the caller's thread (`append`) and a
    delivery thread (`due`, `done`, `retry_later`) may share it.
    """

    def __init__(self, path: Path, initial_backoff_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        if initial_backoff_s <= 0 or max_backoff_s <= 0:
            raise ValueError("outbox backoff must be > 0 seconds")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def append(self, payloads: Sequence[bytes]) -> None:
        """Store payloads, due now, in one transaction: durable once this returns."""
        if not payloads:
            return
        with self._lock, self._transaction():
            self._db.executemany("INSERT INTO outbox (payload) VALUES (?)", [(bytes(p),) for p in payloads])

    def due(self, now: float, limit: int) -> list[tuple[int, bytes, int]]:
        """Up to `limit` payloads whose next attempt is due, oldest first: (id, payload, attempts)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, payload, attempts FROM outbox WHERE next_attempt_at <= ? ORDER BY id LIMIT ?",
                (now, limit)).fetchall()
        return [(row[0], bytes(row[1]), row[2]) for row in rows]

    def done(self, ids: Sequence[int]) -> None:
        """Forget delivered payloads."""
        if not ids:
            return
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def retry_later(self, id: int, now: float, backoff_s: float | None = None) -> float:
        """Count a failed attempt and schedule the next one; return the delay chosen.

        The delay is `backoff_delay(attempts, backoff_s or initial_backoff_s,
        max_backoff_s)`: it doubles with each failure of this payload, capped
        and jittered.
        """
        initial = self.initial_backoff_s if backoff_s is None else backoff_s
        with self._lock, self._transaction():
            row = self._db.execute("SELECT attempts FROM outbox WHERE id = ?", (id,)).fetchone()
            if row is None:
                return 0.0
            attempts = row[0] + 1
            delay = backoff_delay(attempts, initial, self.max_backoff_s, self._rng)
            self._db.execute("UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                             (attempts, now + delay, id))
        return delay

    def next_due_at(self) -> float | None:
        """When the earliest pending payload is due (None when empty)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox").fetchone()
        return row[0]

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST `body` to `url`; return the 2xx status or raise `DeliveryError`.

    Plain `http.client`: no redirects followed (a 3xx is a misconfigured URL and
    counts as a failure), no proxy taken from the environment.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{url!r} is not an http(s) URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout_s, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request("POST", target, body=body, headers={"Content-Length": str(len(body)), **headers})
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"POST {_redacted(parts)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        # The receiver's body is left out: a receiver may echo the alert back in its error.
        raise DeliveryError(f"POST {_redacted(parts)} answered {response.status} {response.reason}")
    return response.status


def _redacted(parts: SplitResult) -> str:
    """The URL without user info or query (either may hold a secret)."""
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}{parts.path}"


Send = Callable[[list[bytes]], None]
"""Deliver payloads in one request; raise `DeliveryError` (or any exception) when it failed."""


class OutboxDelivery:
    """Drains an `Outbox` through `send`, from a daemon thread or step by step with `run_once`.

    `send` gets up to `batch_size` payloads at once; all of them are done when
    it returns, all retried later when it raises. `describe(payload)` names a
    payload in logs (an alert id: never its content). Nothing raises out of the
    thread: every failure is logged, counted in `sink_failures` and retried.
    """

    def __init__(self, name: str, outbox: Outbox, send: Send, describe: Callable[[bytes], str], *,
                 batch_size: int = 1, metrics: ServiceMetrics | None = None, idle_wait_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.name = name
        self.outbox = outbox
        self._send = send
        self._describe = describe
        self._batch_size = batch_size
        self._metrics = metrics
        self._idle_wait_s = idle_wait_s
        self._clock = clock
        self._rng = random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failures_in_a_row = 0
        self._paused_until = 0.0
        self._thread: threading.Thread | None = None
        self.update_depth()

    # -- the caller's side ---------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-delivery", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """New payloads were appended: try now (a pause after failures still holds)."""
        self._wake.set()

    def update_depth(self) -> int:
        depth = len(self.outbox)
        if self._metrics is not None:
            self._metrics.outbox_depth.labels(sink=self.name).set(depth)
        return depth

    def stop(self, timeout_s: float) -> bool:
        """Stop the thread; True when it ended within `timeout_s` (it may be inside one request)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    # -- the delivery side ---------------------------------------------------

    def run_once(self) -> int:
        """Send what is due now, batch by batch, until nothing is due or a send fails.

        Returns the number of payloads delivered.
        """
        delivered = 0
        while not self._stop.is_set():
            now = self._clock()
            if now < self._paused_until:
                break
            batch = self.outbox.due(now, self._batch_size)
            if not batch:
                break
            ids = [row[0] for row in batch]
            try:
                self._send([row[1] for row in batch])
            except Exception as exc:  # noqa: BLE001 - any failure of a send is retried, never raised
                self._failed(batch, exc)
                break
            self.outbox.done(ids)
            delivered += len(ids)
            self._failures_in_a_row = 0
            if self._metrics is not None:
                self._metrics.sink_deliveries.labels(sink=self.name).inc(len(ids))
        self.update_depth()
        return delivered

    def _failed(self, batch: list[tuple[int, bytes, int]], exc: Exception) -> None:
        now = self._clock()
        self._failures_in_a_row += 1
        pause = backoff_delay(self._failures_in_a_row, self.outbox.initial_backoff_s, self.outbox.max_backoff_s,
                              self._rng)
        self._paused_until = now + pause
        if self._metrics is not None:
            self._metrics.sink_failures.labels(sink=self.name).inc()
        for id, _, _ in batch:
            self.outbox.retry_later(id, now)
        names = ", ".join(self._safe_describe(row[1]) for row in batch[:_NAMED_IN_LOG])
        if len(batch) > _NAMED_IN_LOG:
            names += f" and {len(batch) - _NAMED_IN_LOG} more"
        attempt = batch[0][2] + 1
        reason = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        log.warning("%s sink: delivery of %s failed (attempt %d): %s; pausing %.1fs",
                    self.name, names, attempt, reason, pause)

    def _safe_describe(self, payload: bytes) -> str:
        try:
            return self._describe(payload)
        except Exception:  # noqa: BLE001 - a payload we cannot name is still retried
            return "an alert"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._wait_s()
            except Exception:  # noqa: BLE001 - the thread must survive anything (a locked or closed outbox)
                if self._stop.is_set():
                    break
                log.exception("%s sink: delivery loop error; retrying", self.name)
                wait = min(self.outbox.max_backoff_s, self._idle_wait_s)
            self._wake.wait(wait)
            self._wake.clear()

    def _wait_s(self) -> float:
        """Until the next payload or the end of the pause (whichever is later); idle when empty."""
        next_due = self.outbox.next_due_at()
        if next_due is None:
            return self._idle_wait_s
        return max(0.0, max(next_due, self._paused_until) - self._clock())


class OutboxSink:
    """The `AlertSink` side shared by the HTTP sinks: encode, append durably, deliver in the background.

    A subclass sets `name`, and passes `encode` (an alert to the payload kept
    and sent), `send` and `describe` (see `OutboxDelivery`).
    """

    name = "outbox"

    def __init__(self, outbox_path: Path, *, encode: Callable[[dict], bytes], send: Send,
                 describe: Callable[[bytes], str], timeout_s: float, max_backoff_s: float,
                 batch_size: int = 1, metrics: ServiceMetrics | None = None) -> None:
        self._encode = encode
        self._timeout_s = timeout_s
        self.outbox = Outbox(outbox_path, initial_backoff_s=min(1.0, max_backoff_s), max_backoff_s=max_backoff_s)
        self.delivery = OutboxDelivery(self.name, self.outbox, send, describe, batch_size=batch_size,
                                       metrics=metrics)
        self.delivery.start()

    def deliver(self, alerts: list[dict]) -> None:
        """Append the alerts to the outbox: once this returns they survive a crash."""
        if not alerts:
            return
        try:
            payloads = [self._encode(alert) for alert in alerts]
            self.outbox.append(payloads)
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            raise SinkError(f"{self.name} sink: cannot store alerts in the outbox {self.outbox.path}: "
                            f"{type(exc).__name__}: {exc}") from None
        self.delivery.update_depth()
        self.delivery.wake()

    def poll(self) -> None:
        """Delivery runs in its own thread; this refreshes the outbox-depth gauge."""
        self.delivery.update_depth()

    def pending(self) -> int:
        """Alerts stored but not yet acknowledged by the receiver."""
        return self.delivery.update_depth()

    def close(self) -> None:
        """Stop delivering (within about one request timeout) and close the outbox; pending alerts stay."""
        if not self.delivery.stop(self._timeout_s + 1.0):
            log.warning("%s sink: delivery still inside a request at close; an alert may be sent again "
                        "after restart", self.name)
        self.outbox.close()
