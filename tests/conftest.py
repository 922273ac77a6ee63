"""Shared fixtures: a real Kafka-protocol broker (tests/kafka_fixtures.py) and a small
trained model directory with its reference inputs, for service tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detector.artifacts import save_bundle
from detector.model import ForestSettings
from detector.rules import RuleSettings
from detector.training import train
from tests.factories import CATALOG, DIRECTORY_CSV, normal_day, reference_data
from tests.service_harness import ServiceProcess

pytest_plugins = ["tests.kafka_fixtures", "tests.databases"]


@pytest.fixture(autouse=True)
def _no_service_outlives_its_test():
    """A test that fails before stopping the service it started must not leave it running."""
    yield
    ServiceProcess.stop_leftovers()


ACCOUNTS = ("zhang_wei", "li_na", "wang_fang")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A model trained on three weeks of ordinary lookups, plus the inputs it was trained with."""
    root = tmp_path_factory.mktemp("trained")
    events = [e for d in range(1, 19) if d not in (5, 6, 12, 13) for i, a in enumerate(ACCOUNTS)
              for e in normal_day(d, a, lookups=30 + 5 * i)]
    result = train(lambda: [events], reference_data(), ForestSettings(n_estimators=20), RuleSettings())
    save_bundle(root / "models" / "current", result.anomaly, result.scoring.peers, result.states, result.summary,
                {"alert_budget_per_1000_days": 1.0})
    (root / "directory.csv").write_text(DIRECTORY_CSV)
    (root / "catalog.yaml").write_text(yaml.safe_dump(CATALOG))
    (root / "calendar.yaml").write_text("timezone: Asia/Shanghai\n")
    return {"model": root / "models" / "current", "directory": root / "directory.csv",
            "catalog": root / "catalog.yaml", "calendar": root / "calendar.yaml"}
