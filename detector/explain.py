"""Reasons and evidence a security analyst can act on.

Reasons compare a value with a baseline in words ("read 48,210 personal-data
rows today; own daily 95th percentile 35; peers' 120"). Evidence lists
relations, categories and statement fingerprints; it never carries a literal.
"""

from __future__ import annotations

import numpy as np

from detector import counters as C
from detector.alerts import Reason
from detector.features import FEATURES, References
from detector.state import EmployeeState, Snapshot

MAX_FINGERPRINT_CHARS = 400
MAX_EVIDENCE_ITEMS = 5


def model_reasons(row: np.ndarray, snapshot: Snapshot, refs: References, top: int = 3) -> list[Reason]:
    """The features that pushed this row furthest over its references, as sentences."""
    order = np.argsort(-row)[:top]
    reasons = []
    for index in order:
        if row[index] <= 0:
            break
        spec = FEATURES[index]
        counter = C.INDEX[spec.counter]
        value, own, peer = _values(spec.horizon, counter, snapshot, refs)
        baseline = own if spec.reference == "own" else peer
        reasons.append(Reason(spec.name, value, baseline, _sentence(spec.horizon, spec.counter, value, own, peer, refs)))
    return reasons


def _values(horizon: str, counter: int, snapshot: Snapshot, refs: References) -> tuple[float, float, float]:
    if horizon == "hour":
        return snapshot.hour_counts[counter], refs.own.hour_p95[counter], refs.peers.hour_p95[counter]
    if horizon == "week":
        value = snapshot.week_prior[counter] + snapshot.day_counts[counter]
        return value, refs.own.week_p95[counter], refs.peers.week_p95[counter]
    return snapshot.day_counts[counter], refs.own.day_p95[counter], refs.peers.day_p95[counter]


_HORIZON_WORDS = {"hour": ("in the last hour", "busiest hour"), "day": ("today", "day"),
                  "week": ("in the last 7 days", "7 days")}


def _sentence(horizon: str, counter: str, value: float, own: float, peer: float, refs: References) -> str:
    when, per = _HORIZON_WORDS[horizon]
    meaning = C.COUNTER_MEANINGS[counter]
    text = f"{meaning} {when}: {value:,.0f}; own 95th percentile {own:,.0f} per {per}; peers' {peer:,.0f}"
    if refs.departing:
        text += "; employee is under notice"
    return text


def evidence(state: EmployeeState, fingerprints: dict[str, str], extra: dict | None = None) -> dict:
    """Counts, relations, categories and fingerprints of the person's day so far."""
    day = state.day_counts
    relations = sorted(state.day_relations.items(), key=lambda kv: -kv[1])[:MAX_EVIDENCE_ITEMS]
    top_fps = sorted(state.day_fingerprints.items(), key=lambda kv: (-kv[1][1], -kv[1][0]))[:MAX_EVIDENCE_ITEMS]
    result = {
        "statements_today": int(day[C.STATEMENTS]),
        "sensitive_rows_today": int(day[C.SENSITIVE_ROWS]),
        "sensitive_statements_today": int(day[C.SENSITIVE_STATEMENTS]),
        "objects": [{"relation": name, "rows": int(rows)} for name, rows in relations],
        "categories": sorted({c for c in C.CATEGORY_ROWS if day[C.CATEGORY_ROWS[c]] > 0}),
        "columns": sorted(state.day_columns)[:20],
        "fingerprints": [{"id": fp, "fingerprint": fingerprints.get(fp, "")[:MAX_FINGERPRINT_CHARS],
                          "statements": int(n), "rows": int(rows)} for fp, (n, rows) in top_fps],
        "new_sources_today": len(state.day_new_sources),
    }
    if extra:
        result.update(extra)
    return result
