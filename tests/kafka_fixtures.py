"""Pytest fixtures giving tests a real Kafka-protocol broker (Tansu, see streams/broker.py).

Load with `pytest_plugins = ["tests.kafka_fixtures"]` in a conftest. Fixtures:

* `tansu`: a fresh in-memory broker per test.
* `tansu_s3`: a broker whose storage is a local S3 server (`moto_s3`), so it keeps
  records and committed offsets across `restart(kill=True)`; skipped when
  `moto[server]` is not installed.
* `kafka_consumer_settings`: KafkaConsumer kwargs tuned for Tansu's slow group join.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.broker import MotoS3, TansuBroker

# Tansu completes a group join after about half of session_timeout_ms: keep it short.
KAFKA_CONSUMER_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 600,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "fetch_max_wait_ms": 100,
    "request_timeout_ms": 10000,
}


@pytest.fixture
def kafka_consumer_settings() -> dict[str, Any]:
    """A fresh copy of KAFKA_CONSUMER_SETTINGS; add bootstrap_servers and group_id."""
    return dict(KAFKA_CONSUMER_SETTINGS)


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[TansuBroker]:
    """An in-memory Tansu broker on a free loopback port, stopped after the test."""
    broker = TansuBroker(log_path=tmp_path / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop(kill=True)  # nothing to flush; SIGTERM would wait up to 5 s for leaked clients


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """A moto S3 server with the bucket `tansu`, shared by the session (it takes ~2 s to start).

    Sharing is safe: each TansuBroker writes under its own unique cluster id.
    """
    pytest.importorskip("moto.server", reason="needs `pip install 'moto[server]'`")
    with MotoS3(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as s3:
        yield s3


@pytest.fixture
def tansu_s3(moto_s3: MotoS3, tmp_path: Path) -> Iterator[TansuBroker]:
    """A Tansu broker stored in moto S3: survives `restart()` and `restart(kill=True)`."""
    broker = TansuBroker(storage=moto_s3.storage_url, env=moto_s3.env, log_path=tmp_path / "tansu-s3.log").start()
    try:
        yield broker
    finally:
        broker.stop(kill=True)  # writes are already in S3, and moto is discarded next
