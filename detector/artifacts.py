"""The model directory: everything scoring needs, loadable without running code.

Layout of `models/<name>/`:
  forest.skops     the isolation forest, in skops format (no pickle)
  model.json       version, threshold, features, training summary, library versions
  peers.json       peer-group baselines
  states.jsonl     each person's history at the end of training (baselines to continue from)
  MODEL_CARD.md    the same facts for people
  manifest.json    SHA-256 of every file above

Loading checks every file against the manifest (a changed byte is refused) and
lets skops rebuild only the types on an explicit allow-list.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import sklearn
import skops.io as sio
from sklearn.ensemble import IsolationForest

from detector.counters import COUNTER_NAMES
from detector.features import FEATURES, FEATURE_NAMES, PeerBaselines
from detector.inputs import InputError
from detector.model import AnomalyModel
from detector.pipeline import Scoring
from detector.state import EmployeeState

FILES = ("forest.skops", "model.json", "peers.json", "states.jsonl", "MODEL_CARD.md")
TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
FORMAT_VERSION = 1


@dataclass
class ModelBundle:
    scoring: Scoring
    states: dict[str, EmployeeState]
    card: dict
    path: Path | None = None


def save_bundle(out_dir: Path, anomaly: AnomalyModel, peers: PeerBaselines, states: dict[str, EmployeeState],
                summary: dict, settings: dict) -> ModelBundle:
    out_dir.mkdir(parents=True, exist_ok=True)
    forest_bytes = sio.dumps(anomaly.forest)
    trained_at = datetime.now(timezone.utc)
    version = f"{out_dir.name}-{trained_at:%Y%m%dT%H%M%SZ}-{hashlib.sha256(forest_bytes).hexdigest()[:8]}"
    card = {
        "format_version": FORMAT_VERSION,
        "model_version": version,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "threshold": anomaly.threshold,
        "zero_score": anomaly.zero_score,
        "envelope": [float(v) for v in anomaly.envelope],
        "extrapolation_weight": anomaly.extrapolation_weight,
        "features": [{"name": f.name, "meaning": f.meaning} for f in FEATURES],
        "counters": list(COUNTER_NAMES),
        "training": summary,
        "settings": settings,
        "libraries": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                      "numpy": np.__version__, "skops": _version("skops")},
    }
    (out_dir / "forest.skops").write_bytes(forest_bytes)
    (out_dir / "model.json").write_bytes(orjson.dumps(card, option=orjson.OPT_INDENT_2))
    (out_dir / "peers.json").write_bytes(orjson.dumps(peers.to_dict()))
    (out_dir / "states.jsonl").write_bytes(b"".join(orjson.dumps(s.to_dict()) + b"\n" for s in states.values()))
    (out_dir / "MODEL_CARD.md").write_text(model_card(card), encoding="utf-8")
    manifest = {name: _sha256(out_dir / name) for name in FILES}
    (out_dir / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return ModelBundle(Scoring(peers, anomaly, version), states, card, out_dir)


def load_bundle(model_dir: Path | str) -> ModelBundle:
    """Load and verify a model directory; refuse anything tampered with or unknown."""
    path = Path(model_dir)
    manifest = _read_json(path / "manifest.json")
    for name in FILES:
        expected = manifest.get(name)
        if expected is None or not (path / name).is_file():
            raise InputError(f"model {path}: {name} is missing or not listed in manifest.json")
        if _sha256(path / name) != expected:
            raise InputError(f"model {path}: {name} does not match its SHA-256 in manifest.json (tampered or corrupt); refusing to load")
    card = _read_json(path / "model.json")
    if card.get("format_version") != FORMAT_VERSION:
        raise InputError(f"model {path}: format_version {card.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    if [f["name"] for f in card["features"]] != list(FEATURE_NAMES):
        raise InputError(f"model {path}: its features differ from this detector's; retrain with this version")
    if card.get("counters") != list(COUNTER_NAMES):
        raise InputError(f"model {path}: its baselines count other behaviour counters than this detector's; "
                         f"retrain with this version")
    forest = _load_forest(path / "forest.skops")
    anomaly = AnomalyModel(forest, float(card["threshold"]), float(card["zero_score"]),
                           np.asarray(card["envelope"], dtype=float), float(card["extrapolation_weight"]))
    peers = PeerBaselines.from_dict(_read_json(path / "peers.json"))
    states = {}
    for line in (path / "states.jsonl").read_bytes().splitlines():
        if line.strip():
            state = EmployeeState.from_dict(orjson.loads(line))
            states[state.key] = state
    return ModelBundle(Scoring(peers, anomaly, card["model_version"]), states, card, path)


def _load_forest(path: Path) -> IsolationForest:
    data = path.read_bytes()
    untrusted = set(sio.get_untrusted_types(data=data))
    unexpected = untrusted - TRUSTED_TYPES
    if unexpected:
        raise InputError(f"model {path}: contains types outside the allow-list ({', '.join(sorted(unexpected))}); refusing to load")
    forest = sio.loads(data, trusted=sorted(untrusted))
    if not isinstance(forest, IsolationForest):
        raise InputError(f"model {path}: holds a {type(forest).__name__}, not an isolation forest; refusing to load")
    return forest


def _read_json(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"model file not found: {path}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"model file {path} is not valid JSON: {exc}") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


def model_card(card: dict) -> str:
    training = card["training"]
    lines = [
        f"# Model card: {card['model_version']}",
        "",
        "Isolation forest over per-employee behaviour features, each a one-sided log ratio of a count",
        "to the person's own history or to their peer group (role in department).",
        "",
        "## Training",
        f"- period: {training.get('period_start')} to {training.get('period_end')}",
        f"- events: {training.get('events'):,}; employees: {training.get('employees'):,}; "
        f"employee-days: {training.get('employee_days'):,}",
        f"- feature rows: {training.get('feature_rows'):,} ({training.get('nonzero_rows'):,} not all-zero)",
        f"- threshold: {card['threshold']:.4f} (alert budget {card['settings'].get('alert_budget_per_1000_days')} per 1,000 employee-days)",
        f"- on its own training data: model alert days {training.get('model_alert_days_per_1000')} per 1,000 employee-days; "
        f"rule alerts {training.get('rule_alerts_per_1000_days')} per 1,000",
        f"- trained at {card['trained_at']} with " + ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
    ]
    lines += _coverage_lines(training.get("calendar"))
    lines += [
        "",
        "## Features",
        "",
        "| feature | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{f['name']}` | {f['meaning']} |" for f in card["features"]]
    if "evaluation" in card:
        lines += ["", "## Evaluation", "", "```", orjson.dumps(card["evaluation"], option=orjson.OPT_INDENT_2).decode(), "```"]
    return "\n".join(lines) + "\n"


def _coverage_lines(coverage: dict | None) -> list[str]:
    """The kinds of days the baseline held, and what its gaps mean for the alerts."""
    if not coverage:
        return []
    lines = ["", "## What the baseline covers", "",
             f"- {coverage['calendar_days']} calendar days: {coverage['working_days']} working days "
             f"({coverage['make_up_workdays']} make-up workdays), {coverage['days_off']} days off "
             f"({coverage['holidays']} holidays)",
             f"- month-end working days: {coverage['month_end_days']}; month-start working days: "
             f"{coverage['month_start_days']}"]
    if coverage["gaps"]:
        lines += ["", "Gaps (expect alerts on these kinds of days until a model is trained on them):", ""]
        lines += [f"- {gap}" for gap in coverage["gaps"]]
    return lines
