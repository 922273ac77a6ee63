"""Prometheus metrics of the service, named after client_python's conventions.

Names are `exfil_detector_<thing>_<unit>`; counters end in `_total`, durations
are `_seconds`. Label values come from small known sets (reason kinds,
severities, detector and sink names, partitions): never an employee, an
account, or anything from a statement.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

NAMESPACE = "exfil_detector"

REJECTION_KINDS = ("too_large", "not_utf8", "not_json", "not_object", "missing_field", "wrong_type",
                   "negative_count", "unknown_action", "bad_timestamp", "other")


def rejection_kind(reason: str) -> str:
    """Map a rejection sentence to a small label value."""
    checks = (("1 MiB", "too_large"), ("UTF-8", "not_utf8"), ("not valid JSON", "not_json"),
              ("not an object", "not_object"), ("is missing", "missing_field"), ("must be >= 0", "negative_count"),
              ("unknown value", "unknown_action"), ("'ts'", "bad_timestamp"), ("must be", "wrong_type"))
    for needle, kind in checks:
        if needle in reason:
            return kind
    return "other"


class ServiceMetrics:
    """All metrics of one service instance, on their own registry (tests run several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, ns = self.registry, NAMESPACE
        self.events_consumed = Counter("events_consumed", "Events read from the events topic", namespace=ns, registry=r)
        self.events_rejected = Counter("events_rejected", "Events rejected to the dead-letter topic, by reason",
                                       ["reason"], namespace=ns, registry=r)
        self.events_unresolved = Counter("events_unresolved_account", "Events whose account is not in the directory",
                                         namespace=ns, registry=r)
        self.batch_seconds = Histogram("batch_processing_seconds", "Time to process one micro-batch, end to end",
                                       namespace=ns, registry=r,
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.alert_latency = Histogram("event_to_alert_latency_seconds",
                                       "From an event's arrival at the consumer to its alert acknowledged by all sinks",
                                       namespace=ns, registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
        self.consumer_lag = Gauge("consumer_lag_messages", "Messages behind the partition's end offset (approximate)",
                                  ["partition"], namespace=ns, registry=r)
        self.alerts = Counter("alerts", "Alerts emitted (new incidents and escalations)", ["severity", "detector"],
                              namespace=ns, registry=r)
        self.employees_tracked = Gauge("employees_tracked", "People (and unresolved accounts) with state in memory",
                                       namespace=ns, registry=r)
        self.model_info = Info("model", "The model in use", namespace=ns, registry=r)
        self.model_trained_timestamp = Gauge("model_trained_timestamp_seconds", "When the model in use was trained",
                                             namespace=ns, registry=r)
        self.model_reloads = Counter("model_reloads", "Model reload attempts, by result", ["result"],
                                     namespace=ns, registry=r)
        self.newest_event_age = Gauge("newest_event_age_seconds", "Wall-clock age of the newest event time seen",
                                      namespace=ns, registry=r)
        self.newest_event_timestamp = Gauge("newest_event_timestamp_seconds", "Event time of the newest event seen",
                                            namespace=ns, registry=r)
        self.sink_deliveries = Counter("sink_deliveries", "Alerts acknowledged by a sink", ["sink"],
                                       namespace=ns, registry=r)
        self.sink_failures = Counter("sink_failures", "Failed delivery attempts to a sink", ["sink"],
                                     namespace=ns, registry=r)
        self.outbox_depth = Gauge("sink_outbox_depth", "Alerts waiting in a sink's durable outbox", ["sink"],
                                  namespace=ns, registry=r)
        self.commits = Counter("offset_commits", "Offset commits after durable effects", namespace=ns, registry=r)
        self.checkpoint_seconds = Histogram("state_checkpoint_seconds", "Time to save changed state and offsets",
                                            namespace=ns, registry=r, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))
        self.broker_errors = Counter("broker_errors", "Kafka errors survived with retry", ["operation"],
                                     namespace=ns, registry=r)
        self.rebalances = Counter("rebalances", "Partition assignments and revocations", ["kind"],
                                  namespace=ns, registry=r)
        self.restore_seconds = Histogram("state_restore_seconds", "Time to restore one partition's state on assignment",
                                         namespace=ns, registry=r, buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60))
        self.changelog_records = Counter("state_changelog_records", "Records written to the state changelog",
                                         namespace=ns, registry=r)
        self.duplicates_skipped = Counter("repartition_duplicates_skipped",
                                          "Re-keyed events dropped because the same original was already applied",
                                          namespace=ns, registry=r)
        self.events_repartitioned = Counter("events_repartitioned", "Events re-keyed by employee onto the internal topic",
                                            namespace=ns, registry=r)
        self.partitions_assigned = Gauge("partitions_assigned", "Events-topic partitions owned by this instance",
                                         namespace=ns, registry=r)
