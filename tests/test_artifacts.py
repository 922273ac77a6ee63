"""Model directory: save, load to identical scores, and refuse tampered or unsafe files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from detector.artifacts import load_bundle, save_bundle
from detector.inputs import InputError
from detector.model import ForestSettings
from detector.rules import RuleSettings
from detector.training import train
from tests.factories import normal_day, reference_data

ACCOUNTS = ("zhang_wei", "li_na", "wang_fang")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    events = [e for d in range(1, 19) if d not in (5, 6, 12, 13) for i, a in enumerate(ACCOUNTS)
              for e in normal_day(d, a, lookups=30 + 5 * i)]
    refs = reference_data()
    result = train(lambda: [events], refs, ForestSettings(n_estimators=20), RuleSettings())
    out = tmp_path_factory.mktemp("models") / "current"
    bundle = save_bundle(out, result.anomaly, result.scoring.peers, result.states, result.summary, {"alert_budget_per_1000_days": 1.0})
    return out, bundle, result


def test_training_learns_peers_states_and_a_threshold(trained):
    _, bundle, result = trained
    assert set(result.states) == {"E001", "E002", "E003"}
    assert "customer_service/cs-sh" in result.scoring.peers.groups
    assert result.summary["employee_days"] == 3 * 14
    assert np.isfinite(result.anomaly.threshold)
    assert bundle.scoring.version.startswith("current-")


def test_saved_model_loads_and_scores_identically(trained):
    out, bundle, _ = trained
    loaded = load_bundle(out)
    rows = np.abs(np.random.default_rng(1).normal(0, 1, (50, len(loaded.card["features"]))))
    assert np.array_equal(loaded.scoring.anomaly.score(rows), bundle.scoring.anomaly.score(rows))
    assert loaded.scoring.anomaly.threshold == bundle.scoring.anomaly.threshold
    assert loaded.states["E001"].to_dict() == bundle.states["E001"].to_dict()
    assert (out / "MODEL_CARD.md").read_text().startswith("# Model card")


def test_model_card_names_the_kinds_of_day_the_baseline_never_held(trained):
    out, _, result = trained
    gaps = result.summary["calendar"]["gaps"]
    assert any(gap.startswith("no month end") for gap in gaps)
    assert not any(gap.startswith("no month start") for gap in gaps)       # 1-3 September are in it
    card = (out / "MODEL_CARD.md").read_text()
    assert "## What the baseline covers" in card and "- no month end" in card


def _copy(out: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "m"
    copy.mkdir()
    for f in out.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    return copy


def _replace_keeping_manifest_valid(copy: Path, name: str, content: bytes) -> None:
    import hashlib

    (copy / name).write_bytes(content)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest[name] = hashlib.sha256(content).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))


def _replace_forest_keeping_manifest_valid(copy: Path, forest_bytes: bytes) -> None:
    _replace_keeping_manifest_valid(copy, "forest.skops", forest_bytes)


def test_model_trained_with_other_behaviour_counters_is_refused_with_a_retrain_hint(trained, tmp_path: Path):
    copy = _copy(trained[0], tmp_path)
    card = json.loads((copy / "model.json").read_text())
    card["counters"] = card["counters"][:-1]
    _replace_keeping_manifest_valid(copy, "model.json", json.dumps(card).encode())
    with pytest.raises(InputError, match="other behaviour counters.*retrain"):
        load_bundle(copy)


def test_state_store_written_with_other_counters_is_refused_at_start(tmp_path: Path):
    from streams.statestore import StateStore

    StateStore(tmp_path).set_meta("counters", "statements,rows")
    with pytest.raises(InputError, match="other behaviour counters"):
        StateStore(tmp_path)


def test_tampered_model_file_is_refused(trained, tmp_path: Path):
    copy = _copy(trained[0], tmp_path)
    (copy / "forest.skops").write_bytes((copy / "forest.skops").read_bytes() + b"\0")
    with pytest.raises(InputError, match="forest.skops does not match its SHA-256"):
        load_bundle(copy)


def test_model_with_types_outside_the_allow_list_is_refused_even_with_a_valid_manifest(trained, tmp_path: Path):
    import functools
    import os

    copy = _copy(trained[0], tmp_path)
    _replace_forest_keeping_manifest_valid(copy, sio.dumps(functools.partial(os.system, 'true')))
    with pytest.raises(InputError, match="outside the allow-list.*posix.system"):
        load_bundle(copy)


def test_missing_model_directory_names_the_file(tmp_path: Path):
    with pytest.raises(InputError, match="model file not found: .*manifest.json"):
        load_bundle(tmp_path / "nothing")


def test_model_file_holding_something_else_than_a_forest_is_refused(trained, tmp_path: Path):
    copy = _copy(trained[0], tmp_path)
    _replace_forest_keeping_manifest_valid(copy, sio.dumps({"a": 1}))
    with pytest.raises(InputError, match="not an isolation forest"):
        load_bundle(copy)
