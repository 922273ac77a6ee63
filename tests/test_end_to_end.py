"""simulate -> train -> replay -> evaluate through the real command line, on a fixed seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("e2e")
    inputs = ["--directory", str(work / "directory.csv"), "--catalog", str(work / "catalog.yaml"),
              "--calendar", str(work / "calendar.yaml")]
    assert main(["simulate", "--out", str(work), "--seed", "3", "--employees", "40", "--days", "21"]) == 0
    assert main(["train", "--events", str(work / "train.jsonl"), *inputs, "--out", str(work / "model")]) == 0
    assert main(["replay", "--model", str(work / "model"), "--events", str(work / "test.jsonl"), *inputs,
                 "--alerts-out", str(work / "alerts.jsonl"), "--dead-letter", str(work / "dead.jsonl")]) == 0
    assert main(["evaluate", "--labels", str(work / "labels.jsonl"), "--alerts", str(work / "alerts.jsonl"),
                 "--events", str(work / "test.jsonl"), "--directory", str(work / "directory.csv"),
                 "--json-out", str(work / "evaluation.json")]) == 0
    figures = {r["detector"]: r for r in json.loads((work / "evaluation.json").read_text())}
    return {"work": work, "figures": figures}


def test_detector_finds_most_incidents_with_few_false_alerts(evaluated):
    ours = evaluated["figures"]["exfil-detector"]
    assert ours["incidents"] == 20
    assert ours["recall"] >= 0.9                                    # measured: 18 of 20
    # 211 test employee-days: one false alert day is 4.7 per 1,000. Measured: 1 day (4.74). The 376
    # training employee-days are too few to show a 1-in-1,000 day, so the threshold is extrapolated
    # (`model.tail_quantile`); with the highest training day as threshold it was 4 days (18.96).
    assert ours["false_alerts_per_1000_employee_days"] <= 5.0


def test_detector_beats_static_volume_rules_on_recall_and_false_alerts(evaluated):
    ours, static = evaluated["figures"]["exfil-detector"], evaluated["figures"]["static volume rules"]
    assert ours["recall"] > static["recall"]
    assert ours["false_alerts_per_1000_employee_days"] <= static["false_alerts_per_1000_employee_days"]


def test_daily_isolation_forest_baseline_runs_on_the_same_data(evaluated):
    daily = evaluated["figures"]["daily isolation forest"]
    assert daily["incidents"] == 20 and daily["employee_days"] == evaluated["figures"]["exfil-detector"]["employee_days"]
    assert daily["recall"] < evaluated["figures"]["exfil-detector"]["recall"]


def test_alerts_carry_no_statement_literals_and_rerun_gives_the_same_ids(evaluated):
    work: Path = evaluated["work"]
    alerts = [json.loads(line) for line in (work / "alerts.jsonl").read_text().splitlines()]
    assert alerts
    literal_samples = _literals(work / "test.jsonl")
    text = (work / "alerts.jsonl").read_text()
    assert not [lit for lit in literal_samples if lit in text]
    inputs = ["--directory", str(work / "directory.csv"), "--catalog", str(work / "catalog.yaml"),
              "--calendar", str(work / "calendar.yaml")]
    assert main(["replay", "--model", str(work / "model"), "--events", str(work / "test.jsonl"), *inputs,
                 "--alerts-out", str(work / "again.jsonl")]) == 0
    again = [json.loads(line) for line in (work / "again.jsonl").read_text().splitlines()]
    assert [a["alert_id"] for a in again] == [a["alert_id"] for a in alerts]


def _literals(events: Path, limit: int = 3000) -> set[str]:
    """Phone numbers and ID-card numbers that appear as literals in the statements."""
    import re

    found: set[str] = set()
    pattern = re.compile(r"'(1[3-9]\d{9}|\d{17}[\dX])'")
    with events.open() as handle:
        for line in handle:
            found.update(pattern.findall(line))
            if len(found) >= limit:
                break
    return found
