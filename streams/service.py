"""`exfil-detector run`: the background service, wired.

    Kafka events -> decode (rejects -> dead-letter topic) -> DetectionPipeline
      -> alerts to every sink -> state checkpoint (with offsets) -> offset commit

One micro-batch at a time, like arroyo's last step: nothing is committed until
every effect of the batch is durable. A failing sink or an unreachable broker
is retried with backoff while the batch is held (partitions paused, the group
membership kept alive); the service never crashes on input, and on restart it
resumes from the state checkpoint and the offsets saved with it.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

from detector.artifacts import ModelBundle, load_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.events import Rejection, decode_event
from detector.pipeline import DetectionPipeline, ReferenceData
from detector.rules import RuleSettings
from streams.config import Config
from streams.endpoints import HealthServer
from streams.kafka import DeadLetterTopic, EventConsumer, KafkaAlertSink, make_producer
from streams.metrics import ServiceMetrics, rejection_kind
from streams.sinks import AlertSink, SinkError
from streams.sinks.jsonl import JsonlSink
from streams.statestore import StateStore

log = logging.getLogger("exfil_detector.service")
MAX_BACKOFF_S = 30.0


class DetectorService:
    def __init__(self, config: Config, metrics: ServiceMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or ServiceMetrics()
        self._stop = False
        self._reload = False
        self._model_stamp: tuple[float, int] | None = None
        self._next_model_check = 0.0
        self._warned_accounts: set[str] = set()
        refs = ReferenceData(Directory.load(config.inputs.directory), Catalog.load(config.inputs.catalog),
                             WorkCalendar.load(config.inputs.calendar))
        bundle = load_bundle(config.model.path)
        rules = RuleSettings(config.rules.bulk_read_rows, config.rules.bulk_read_critical_rows, config.rules.export_enabled)
        self.pipeline = DetectionPipeline(refs, bundle.scoring, rules)
        self.store = StateStore(Path(config.state.path))
        self._adopt_model(bundle)
        self.pipeline.restore(bundle.states)
        self.pipeline.restore(self.store.load_states(), self.store.load_incidents())
        self.producer = make_producer(config.kafka)
        self.dead_letters = DeadLetterTopic(self.producer, config.kafka.dead_letter_topic)
        self.sinks = self._build_sinks()
        self.consumer: EventConsumer | None = None
        self.http: HealthServer | None = None

    # -- lifecycle ------------------------------------------------------------

    def run(self) -> int:
        if self.config.kafka.create_topics:
            self._create_topics()
        self.http = HealthServer(self.config.metrics.host, self.config.metrics.port, self.metrics.registry, self.readiness).start()
        self.consumer = EventConsumer(self.config.kafka, self._on_revoked, self._on_assigned)
        log.info("consuming %s as group %s from %s; metrics on :%d", self.config.kafka.events_topic,
                 self.config.kafka.group_id, self.config.kafka.bootstrap_servers, self.http.port)
        try:
            while not self._stop:
                self._maybe_reload_model()
                self._poll_once()
        finally:
            self._shutdown()
        return 0

    def _create_topics(self) -> None:
        """Development convenience (replication factor 1); production topics are created by the platform team."""
        from streams.broker import create_topics

        k = self.config.kafka
        create_topics(k.bootstrap_servers, {k.events_topic: k.events_partitions, k.alerts_topic: k.events_partitions,
                                            k.dead_letter_topic: 1})

    def request_stop(self, *_: object) -> None:
        self._stop = True

    def request_reload(self, *_: object) -> None:
        self._reload = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def readiness(self) -> tuple[bool, str]:
        if self.consumer is None or not self.consumer.assignment():
            return False, "no partitions assigned yet"
        return True, f"ready: model {self.pipeline.scoring.version}, partitions {sorted(self.consumer.assignment())}"

    def _shutdown(self) -> None:
        log.info("stopping: closing consumer, sinks and state")
        if self.consumer is not None:
            self.consumer.close()
        for sink in self.sinks:
            sink.close()
        self.producer.close(timeout=self.config.service.shutdown_timeout_s)
        self.store.close()
        if self.http is not None:
            self.http.stop()

    # -- one micro-batch --------------------------------------------------------

    def _poll_once(self) -> None:
        batches = self._poll_consumer()
        for sink in self.sinks:
            sink.poll()
        if not batches:
            self._update_gauges({})
            return
        received = time.monotonic()
        alerts, rejected, next_offsets = self._process(batches)
        self._make_durable(alerts, rejected, next_offsets)
        done = time.monotonic()
        self.metrics.batch_seconds.observe(done - received)
        for alert in alerts:
            self.metrics.alerts.labels(alert["severity"], alert["detector"]).inc()
            self.metrics.alert_latency.observe(done - received)
            log.info("alert %s employee=%s detector=%s severity=%s revision=%d", alert["alert_id"],
                     alert["employee_id"], alert["detector"], alert["severity"], alert.get("revision", 0))
        self._update_gauges(next_offsets)

    def _poll_consumer(self) -> dict[int, list]:
        try:
            return self.consumer.poll()
        except Exception as exc:  # broker gone, coordinator moving: retried by polling again
            self.metrics.broker_errors.labels("poll").inc()
            log.warning("poll failed, retrying: %s", exc)
            time.sleep(1.0)
            return {}

    def _process(self, batches: dict[int, list]) -> tuple[list[dict], list[tuple], dict[int, int]]:
        alerts: list[dict] = []
        rejected: list[tuple] = []
        next_offsets: dict[int, int] = {}
        newest = 0
        for partition in sorted(batches):
            records = batches[partition]
            events, event_records = [], []
            for record in records:
                result = decode_event(record.value or b"")
                if isinstance(result, Rejection):
                    rejected.append((record, result.reason))
                    self.metrics.events_rejected.labels(rejection_kind(result.reason)).inc()
                else:
                    events.append(result)
                    event_records.append(record)
                    newest = max(newest, result.ts_ms)
            unresolved_before = self.pipeline.stats.unresolved_events
            alerts.extend(self.pipeline.process(events, stream=partition, score=False))
            rejected.extend(self._failed_records(event_records))
            self.metrics.events_unresolved.inc(self.pipeline.stats.unresolved_events - unresolved_before)
            self.metrics.events_consumed.inc(len(records))
            next_offsets[partition] = records[-1].offset + 1
        alerts.extend(self.pipeline.score_pending())
        self._warn_unresolved()
        if newest:
            self.metrics.newest_event_timestamp.set(newest / 1000)
        return alerts, rejected, next_offsets

    def _failed_records(self, event_records: list) -> list[tuple]:
        """Events the pipeline could not process go to the dead-letter topic, with the reason."""
        failures, self.pipeline.failures = self.pipeline.failures, []
        if failures:
            self.metrics.events_rejected.labels("other").inc(len(failures))
            log.error("%d events failed inside the pipeline; sent to the dead-letter topic", len(failures))
        return [(event_records[i], reason) for i, reason in failures]

    def _make_durable(self, alerts: list[dict], rejected: list[tuple], next_offsets: dict[int, int]) -> None:
        """Deliver, checkpoint, commit: retried with backoff until done (or stop requested long enough)."""
        waiting = {sink.name: sink for sink in self.sinks}
        backoff, give_up_at = 0.5, None
        while True:
            for name, sink in list(waiting.items()):
                try:
                    sink.deliver(alerts)
                    self.metrics.sink_deliveries.labels(name).inc(len(alerts))
                    del waiting[name]
                except SinkError as exc:
                    self.metrics.sink_failures.labels(name).inc()
                    log.error("sink %s failed, batch held for retry: %s", name, exc)
            if rejected:
                try:
                    self.dead_letters.send_all(rejected)
                    rejected = []
                except SinkError as exc:
                    self.metrics.sink_failures.labels("dead_letter").inc()
                    log.error("dead letters not acknowledged, retrying: %s", exc)
            if not waiting and not rejected:
                self.consumer.release()
                break
            if self._stop:
                give_up_at = give_up_at or time.monotonic() + self.config.service.shutdown_timeout_s
                if time.monotonic() > give_up_at:
                    log.error("stopping with a batch not durable; its events will be re-processed after restart")
                    return
            self._wait_paused(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._checkpoint(next_offsets)

    def _checkpoint(self, next_offsets: dict[int, int]) -> None:
        started = time.monotonic()
        states, incidents = self.pipeline.drain_changes()
        self.store.checkpoint(self.config.kafka.events_topic, [(s.partition, s) for s in states],
                              [(self._partition_of(k), k, i) for k, i in incidents], next_offsets)
        self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
        try:
            self.consumer.commit(next_offsets)
            self.metrics.commits.inc()
        except Exception as exc:  # the checkpoint holds the offsets; the next commit catches up
            self.metrics.broker_errors.labels("commit").inc()
            log.warning("offset commit failed (state checkpoint holds the offsets): %s", exc)

    def _wait_paused(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop:
            try:
                self.consumer.hold()
            except Exception as exc:
                self.metrics.broker_errors.labels("poll").inc()
                log.debug("poll while holding a batch failed: %s", exc)
            time.sleep(min(0.2, seconds))

    def _partition_of(self, key: str) -> int:
        state = self.pipeline.states.get(key)
        return state.partition if state is not None else -1

    # -- rebalance --------------------------------------------------------------

    def _on_assigned(self, partitions: set[int]) -> None:
        saved = self.store.offsets(self.config.kafka.events_topic)
        for partition in partitions:
            if partition in saved:
                self.consumer.seek(partition, saved[partition])
        self.metrics.partitions_assigned.set(len(self.consumer.assignment()) if self.consumer else len(partitions))
        log.info("assigned partitions %s; resuming from saved offsets %s", sorted(partitions),
                 {p: saved[p] for p in partitions if p in saved})

    def _on_revoked(self, partitions: set[int]) -> None:
        log.info("partitions %s revoked", sorted(partitions))

    # -- models -----------------------------------------------------------------

    def _adopt_model(self, bundle: ModelBundle) -> None:
        self.pipeline.use_scoring(bundle.scoring)
        self.metrics.model_info.info({"version": bundle.scoring.version, "path": str(bundle.path),
                                      "trained_at": str(bundle.card.get("trained_at"))})
        trained = bundle.card.get("trained_at")
        if trained:
            from datetime import datetime
            self.metrics.model_trained_timestamp.set(datetime.fromisoformat(trained).timestamp())
        self._model_stamp = _model_stamp(Path(self.config.model.path))
        log.info("using model %s from %s", bundle.scoring.version, bundle.path)

    def _maybe_reload_model(self) -> None:
        interval = self.config.model.watch_interval_s
        now = time.monotonic()
        if not self._reload and (interval <= 0 or now < self._next_model_check):
            return
        self._next_model_check = now + interval
        forced, self._reload = self._reload, False
        if not forced and _model_stamp(Path(self.config.model.path)) == self._model_stamp:
            return
        try:
            self._adopt_model(load_bundle(self.config.model.path))
            self.metrics.model_reloads.labels("loaded").inc()
        except Exception as exc:
            self.metrics.model_reloads.labels("refused").inc()
            self._model_stamp = _model_stamp(Path(self.config.model.path))
            log.error("new model not loaded, keeping %s: %s", self.pipeline.scoring.version, exc)

    # -- wiring -----------------------------------------------------------------

    def _build_sinks(self) -> list[AlertSink]:
        sinks: list[AlertSink] = []
        cfg, state_dir = self.config.sinks, Path(self.config.state.path)
        if cfg.kafka.enabled:
            sinks.append(KafkaAlertSink(self.producer, self.config.kafka.alerts_topic))
        if cfg.jsonl.path:
            sinks.append(JsonlSink(Path(cfg.jsonl.path)))
        if cfg.webhook.url:
            from streams.sinks.webhook import WebhookSink
            sinks.append(WebhookSink(cfg.webhook, state_dir / "outbox-webhook.sqlite3", self.metrics))
        if cfg.alertmanager.url:
            from streams.sinks.alertmanager import AlertmanagerSink
            sinks.append(AlertmanagerSink(cfg.alertmanager, state_dir / "outbox-alertmanager.sqlite3", self.metrics))
        return sinks

    def _update_gauges(self, next_offsets: dict[int, int]) -> None:
        self.metrics.employees_tracked.set(len(self.pipeline.states))
        newest = self.metrics.newest_event_timestamp._value.get()
        if newest:
            self.metrics.newest_event_age.set(max(0.0, time.time() - newest))
        if next_offsets and self.consumer is not None:
            for partition, lag in self.consumer.lag(next_offsets).items():
                self.metrics.consumer_lag.labels(str(partition)).set(lag)
        for sink in self.sinks:
            self.metrics.outbox_depth.labels(sink.name).set(sink.pending())

    def _warn_unresolved(self) -> None:
        new = self.pipeline.stats.unresolved_accounts - self._warned_accounts
        for account in sorted(new):
            log.warning("database account %r is not in the directory %s; scored on its own history as account:%s",
                        account, self.config.inputs.directory, account)
        self._warned_accounts |= new


def _model_stamp(path: Path) -> tuple[float, int] | None:
    manifest = path / "manifest.json"
    try:
        stat = manifest.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
