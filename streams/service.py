"""`exfil-detector run`: the background service, wired.

    Kafka events -> decode (rejects -> dead-letter topic) -> DetectionPipeline
      -> alerts to every sink                                  (every micro-batch)
      -> state changelog -> local store -> offset commit       (every checkpoint interval)

Like arroyo's last step, nothing is committed until every effect before it is
durable. A failing sink or an unreachable broker is retried with backoff while
the batch is held (partitions paused, the group membership kept alive); the
service never crashes on input. Like quixstreams, state lives per partition: on
assignment a partition's state is restored (local store, then the changelog
beyond it) before its events are read, and on revocation it is checkpointed
and let go, so instances in one consumer group can share the work.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from detector.artifacts import ModelBundle, load_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.events import Rejection, decode_event
from detector.pipeline import DetectionPipeline, ReferenceData, settle_heap
from detector.rules import RuleSettings
from streams.config import Config
from streams.endpoints import HealthServer
from streams.fetch import FetchProcess
from streams.changelog import ChangelogReader, ChangelogWriter, PartitionProgress, changelog_records
from streams.kafka import DeadLetterTopic, EventConsumer, KafkaAlertSink, make_producer
from streams.repartition import Repartitioner, origin_of
from streams.topics import topic_layout
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
        rules = RuleSettings(**vars(config.rules))
        self.pipeline = DetectionPipeline(refs, bundle.scoring, rules)
        self.pipeline.seed(bundle.states)
        self.store = StateStore(Path(config.state.path))
        self.pipeline.profiler.fingerprints.update(self.store.load_fingerprints())
        self._adopt_model(bundle)
        self.topic = config.kafka.scored_topic
        self.producer = make_producer(config.kafka)
        self.dead_letters = DeadLetterTopic(self.producer, config.kafka.dead_letter_topic)
        self.sinks = self._build_sinks()
        self.changelog = ChangelogWriter(self.producer, config.kafka.state_changelog_topic) \
            if config.state.changelog else None
        self.changelog_reader: ChangelogReader | None = None
        self.repartitioner: Repartitioner | None = None
        self.progress: dict[int, PartitionProgress] = {}   # per owned partition: what its state reflects
        self._changelog_next: dict[int, int] = {}          # per owned partition: changelog offset after our last marker
        self._released: dict[int, int] = {}                # revoked after a checkpoint, still in memory
        self._unsaved: set[int] = set()                    # partitions with effects not yet checkpointed
        self._next_checkpoint = 0.0
        self._in_flight = False
        self._abandoned = False
        self.consumer: EventConsumer | FetchProcess | None = None
        self.http: HealthServer | None = None

    # -- lifecycle ------------------------------------------------------------

    def run(self) -> int:
        if self.config.kafka.create_topics:
            self._create_topics()
        self.http = HealthServer(self.config.metrics.host, self.config.metrics.port, self.metrics.registry, self.readiness).start()
        if self.changelog is not None:
            self.changelog_reader = ChangelogReader(self.config.kafka, self.changelog.topic)
        if self.config.kafka.repartition:
            self.repartitioner = Repartitioner(self.config.kafka, self.pipeline.refs.directory, self.metrics).start()
        consumer = FetchProcess if self.config.kafka.fetch_process else EventConsumer
        self.consumer = consumer(self.config.kafka, self._on_revoked, self._on_assigned, topic=self.topic)
        log.info("consuming %s as group %s from %s; metrics on :%d", self.topic,
                 self.config.kafka.group_id, self.config.kafka.bootstrap_servers, self.http.port)
        settle_heap()
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

        create_topics(self.config.kafka.bootstrap_servers, *topic_layout(self.config))

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
        log.info("stopping: last checkpoint, then closing consumer, sinks and state")
        if self.repartitioner is not None:
            self.repartitioner.stop()
        if self.consumer is not None:
            if self._unsaved:
                self._checkpoint(may_wait=False)
            self.consumer.close()
        if self.changelog_reader is not None:
            self.changelog_reader.close()
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
        if batches:
            received = time.monotonic()
            alerts, rejected = self._process(batches)
            if not self._deliver(alerts, rejected):
                return
            done = time.monotonic()
            self.metrics.batch_seconds.observe(done - received)
            self._report(alerts, done - received)
        if self._unsaved and (time.monotonic() >= self._next_checkpoint or self._stop):
            self._checkpoint()
        self._update_gauges()

    def _poll_consumer(self) -> dict[int, list]:
        try:
            return self.consumer.poll()
        except Exception as exc:  # broker gone, coordinator moving: retried by polling again
            self.metrics.broker_errors.labels("poll").inc()
            log.warning("poll failed, retrying: %s", exc)
            time.sleep(1.0)
            return {}

    def _process(self, batches: dict[int, list]) -> tuple[list[dict], list[tuple]]:
        alerts: list[dict] = []
        rejected: list[tuple] = []
        newest = 0
        for partition in sorted(batches):
            records = batches[partition]
            progress = self.progress.setdefault(partition, PartitionProgress())
            if self.config.kafka.repartition:
                records = self._first_deliveries(records, progress)
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
            self.metrics.events_consumed.inc(len(batches[partition]))
            progress.events += len(events)
            progress.rejected += len(records) - len(events)
            progress.next_offset = batches[partition][-1].offset + 1
            progress.watermark = self.pipeline.watermark(partition)
            self._unsaved.add(partition)
        alerts.extend(self.pipeline.score_pending())
        self._warn_unresolved()
        if newest:
            self.metrics.newest_event_timestamp.set(newest / 1000)
        return alerts, rejected

    def _first_deliveries(self, records: list, progress: PartitionProgress) -> list:
        """Drop re-keyed copies already applied: a repartitioner that crashed before committing re-sends them."""
        fresh = []
        for record in records:
            origin = origin_of(record)
            if origin is None:
                fresh.append(record)
                continue
            source, offset = origin
            if offset > progress.sources.get(source, -1):
                progress.sources[source] = offset
                fresh.append(record)
            else:
                self.metrics.duplicates_skipped.inc()
        return fresh

    def _failed_records(self, event_records: list) -> list[tuple]:
        """Events the pipeline could not process go to the dead-letter topic, with the reason."""
        failures, self.pipeline.failures = self.pipeline.failures, []
        if failures:
            self.metrics.events_rejected.labels("other").inc(len(failures))
            log.error("%d events failed inside the pipeline; sent to the dead-letter topic", len(failures))
        return [(event_records[i], reason) for i, reason in failures]

    def _deliver(self, alerts: list[dict], rejected: list[tuple]) -> bool:
        """Alerts to every sink and rejects to the dead-letter topic, retried with backoff until done.

        Returns False only when a stop was requested and the shutdown timeout ran out: the batch
        is then not checkpointed, and its events are processed again after the restart."""
        waiting = {sink.name: sink for sink in self.sinks}

        def attempt() -> bool:
            nonlocal rejected
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
            return not waiting and not rejected

        return self._until_done(attempt)

    def _until_done(self, attempt: Callable[[], bool]) -> bool:
        """Retry with backoff while the partitions are paused and the group membership is kept."""
        backoff, give_up_at = 0.5, None
        self._in_flight = True
        try:
            while not attempt():
                if self._stop:
                    give_up_at = give_up_at or time.monotonic() + self.config.service.shutdown_timeout_s
                    if time.monotonic() > give_up_at:
                        log.error("stopping with a batch not durable; its events will be re-processed after restart")
                        self._abandoned = True
                        return False
                self._wait_paused(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self.consumer.release()
            return True
        finally:
            self._in_flight = False

    def _report(self, alerts: list[dict], seconds: float) -> None:
        for alert in alerts:
            self.metrics.alerts.labels(alert["severity"], alert["detector"]).inc()
            self.metrics.alert_latency.observe(seconds)
            log.info("alert %s employee=%s detector=%s severity=%s revision=%d", alert["alert_id"],
                     alert["employee_id"], alert["detector"], alert["severity"], alert.get("revision", 0))

    # -- checkpoints --------------------------------------------------------------

    def _checkpoint(self, may_wait: bool = True) -> bool:
        """Changed state to the changelog (acknowledged), then the local store, then offset commits."""
        if self._abandoned:
            return False
        started = time.monotonic()
        owned = self.consumer.assignment()
        partitions = self._unsaved & owned
        states, incidents = self.pipeline.drain_changes()
        fingerprints = self.pipeline.profiler.drain_new_fingerprints()
        states = [(s.partition, s) for s in states if s.partition in partitions]
        incidents = [(self._partition_of(k), k, i) for k, i in incidents]
        incidents = [entry for entry in incidents if entry[0] in partitions]
        if self.changelog is not None and not self._write_changelog(partitions, states, incidents, fingerprints,
                                                                    may_wait):
            self.pipeline.profiler.new_fingerprints.update(fingerprints)
            return False
        self.store.checkpoint(self.topic, states, incidents,
                              {p: (self.progress[p], self._changelog_next.get(p, 0)) for p in partitions}, fingerprints)
        self._unsaved -= partitions
        self._next_checkpoint = time.monotonic() + self.config.state.checkpoint_interval_s
        self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
        offsets = {p: self.progress[p].next_offset for p in partitions}
        try:
            self.consumer.commit(offsets)
            self.metrics.commits.inc()
        except Exception as exc:  # the checkpoint holds the offsets; the next commit catches up
            self.metrics.broker_errors.labels("commit").inc()
            log.warning("offset commit failed (the state checkpoint holds the offsets): %s", exc)
        return True

    def _write_changelog(self, partitions: set[int], states: list, incidents: list, fingerprints: dict[str, str],
                         may_wait: bool) -> bool:
        by_partition: dict[int, tuple[list, list]] = {p: ([], []) for p in partitions}
        for partition, state in states:
            by_partition[partition][0].append(state)
        for partition, key, incident in incidents:
            by_partition[partition][1].append((key, incident))
        records = {p: changelog_records(self.changelog.topic, p, s, i, self.progress[p], fingerprints)
                   for p, (s, i) in by_partition.items()}
        written: dict[int, int] = {}

        def attempt() -> bool:
            try:
                written.update(self.changelog.write(records))
                return True
            except SinkError as exc:
                self.metrics.sink_failures.labels("changelog").inc()
                log.error("state changelog not acknowledged, retrying: %s", exc)
                return False

        if not (attempt() if not may_wait else self._until_done(attempt)):
            return False
        self._changelog_next.update(written)
        self.metrics.changelog_records.inc(sum(len(r) for r in records.values()))
        return True

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

    # -- rebalance: state follows its partition ------------------------------------

    def _on_revoked(self, partitions: set[int]) -> None:
        """Finish: checkpoint what was processed, then let go (kept in memory while nobody else writes)."""
        if self._in_flight:
            log.warning("partitions %s revoked while a batch was in flight; its effects are dropped and "
                        "will be re-processed by the new owner", sorted(partitions))
            self._forget(partitions)
            return
        if self._unsaved & partitions and not self._checkpoint(may_wait=False):
            self._forget(partitions)
            return
        for partition in partitions:
            self._released[partition] = self._changelog_next.get(partition, 0)
        self.metrics.rebalances.labels("revoked").inc()
        log.info("partitions %s revoked after a checkpoint", sorted(partitions))

    def _on_assigned(self, partitions: set[int]) -> None:
        kept = {p for p in partitions if p in self._released and self._unchanged_elsewhere(p)}
        self._forget((set(self._released) | set(self.progress)) - kept)
        self._released.clear()
        restore = sorted(partitions - kept)
        self.consumer.pause_partitions(restore)
        for partition in restore:
            self._restore_partition(partition)
        for partition in kept:
            if self.progress.get(partition) and self.progress[partition].next_offset is not None:
                self.consumer.seek(partition, self.progress[partition].next_offset)
        self.consumer.resume_partitions(restore)
        self.metrics.partitions_assigned.set(len(partitions))
        self.metrics.rebalances.labels("assigned").inc()
        log.info("assigned partitions %s (kept in memory: %s, restored: %s)", sorted(partitions), sorted(kept), restore)

    def _unchanged_elsewhere(self, partition: int) -> bool:
        if self.changelog_reader is None:
            return True
        return self.changelog_reader.end_offset(partition) <= self._released[partition]

    def _forget(self, partitions: set[int]) -> None:
        if not partitions:
            return
        self.pipeline.drop_partitions(partitions)
        for partition in partitions:
            self.progress.pop(partition, None)
            self._changelog_next.pop(partition, None)
            self._released.pop(partition, None)
        self._unsaved -= partitions

    def _restore_partition(self, partition: int) -> None:
        """Local store first, then whatever the changelog has beyond it (written by another instance)."""
        started = time.monotonic()
        progress, changelog_next = self.store.progress(self.topic).get(partition, (PartitionProgress(), 0))
        states = self.store.load_states([partition])
        incidents: dict = self.store.load_incidents([partition])
        read = 0
        if self.changelog_reader is not None:
            restored = self.changelog_reader.restore(partition, changelog_next, progress)
            read = restored.records_read
            self.pipeline.profiler.fingerprints.update(restored.fingerprints)
            if restored.changelog_next > changelog_next:
                states.update(restored.states)
                incidents.update(restored.incidents)
                progress, changelog_next = restored.progress, restored.changelog_next
                self.store.checkpoint(self.topic, [(partition, s) for s in restored.states.values()],
                                      [(partition, k, i) for k, i in restored.incidents.items()],
                                      {partition: (progress, changelog_next)}, restored.fingerprints)
        self.pipeline.restore(states, {k: i for k, i in incidents.items() if i is not None},
                              {partition: progress.watermark} if progress.watermark is not None else None)
        self.progress[partition], self._changelog_next[partition] = progress, changelog_next
        if progress.next_offset is not None:
            self.consumer.seek(partition, progress.next_offset)
        seconds = time.monotonic() - started
        self.metrics.restore_seconds.observe(seconds)
        log.info("partition %d restored: %d people, %d changelog records read, resuming at offset %s (%.2f s)",
                 partition, len(states), read, progress.next_offset, seconds)

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
        for gap in ((bundle.card.get("training") or {}).get("calendar") or {}).get("gaps", []):
            log.warning("model %s: its baseline has %s", bundle.scoring.version, gap)

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

    def _update_gauges(self) -> None:
        self.metrics.employees_tracked.set(len(self.pipeline.states))
        newest = self.metrics.newest_event_timestamp._value.get()
        if newest:
            self.metrics.newest_event_age.set(max(0.0, time.time() - newest))
        positions = {p: pr.next_offset for p, pr in self.progress.items() if pr.next_offset is not None}
        if positions and self.consumer is not None:
            for partition, lag in self.consumer.lag(positions).items():
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
