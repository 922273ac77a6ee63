"""Every topic the service uses, with its partition count and topic settings, in one place.

`kafka.create_topics = true` (and the demo) create exactly this layout; the README's
operations section documents it for platform teams who create topics themselves.
"""

from __future__ import annotations

from streams.changelog import TOPIC_CONFIG as CHANGELOG_CONFIG
from streams.config import Config

REPARTITION_RETENTION_MS = str(7 * 24 * 3600 * 1000)


def topic_layout(config: Config) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """Every topic the service uses, with partition counts and topic settings ({name: n}, {name: configs})."""
    k = config.kafka
    topics = {k.events_topic: k.events_partitions, k.alerts_topic: k.events_partitions, k.dead_letter_topic: 1}
    settings: dict[str, dict[str, str]] = {}
    if k.repartition:
        topics[k.employee_keyed_topic] = k.events_partitions
        settings[k.employee_keyed_topic] = {"cleanup.policy": "delete", "retention.ms": REPARTITION_RETENTION_MS}
    if config.state.changelog:
        topics[k.state_changelog_topic] = k.events_partitions
        settings[k.state_changelog_topic] = dict(CHANGELOG_CONFIG)
    return topics, settings
