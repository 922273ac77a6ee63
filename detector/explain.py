"""Reasons and evidence a security analyst can act on.

Reasons compare a value with a baseline in words ("personal-data rows read
today: 48,210; own usual 35 (95th percentile 120); peers' 95th percentile 300").
Evidence lists relations, categories and statement fingerprints; it never
carries a literal.
"""

from __future__ import annotations

import numpy as np

from detector import counters as C
from detector.alerts import Reason
from detector.features import FEATURES, SUSTAINED, References, top_cells
from detector.state import DayEvidence, Snapshot
from detector.sustained import ALLOWANCE, CAP

MAX_FINGERPRINT_CHARS = 400
MAX_EVIDENCE_ITEMS = 5
_WHEN = {"hour": "in the last hour", "day": "today", "week": "in the last 7 days apart from the busiest one"}
_PER = {"hour": "busiest hour", "day": "day", "week": "7 days"}


def model_reasons(row: np.ndarray, cells: np.ndarray, snapshot: Snapshot, refs: References, top: int = 3,
                  first: int | None = None, history: list | None = None) -> list[Reason]:
    """The features that pushed this row furthest over its references, as sentences (`first`, a
    feature index, leads when given: the one a rule fired on; `history`, the person's past
    active days, lets a sustained excess show the days it is made of)."""
    order = [int(i) for i in np.argsort(-row)]
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    reasons = []
    for index in order[:top]:
        if row[index] <= 0:
            break
        counter, horizon, reference = top_cells(cells, int(index))
        i = C.INDEX[counter]
        value = _value(horizon, i, snapshot)
        own_mid, own_high = _level(refs.own, horizon, i)
        peer_mid, peer_high = _level(refs.peers, horizon, i)
        baseline = own_high if reference == "own" else peer_high
        text = (f"{C.COUNTER_MEANINGS[counter]} {_WHEN[horizon]}: {value:,.0f}; own usual {own_mid:,.0f} "
                f"(95th percentile {own_high:,.0f}) per {_PER[horizon]}; peers' 95th percentile {peer_high:,.0f}")
        if FEATURES[index].name == SUSTAINED:
            text = _sustained_text(row[index], i, history or []) + text
        if refs.departing:
            text += "; employee is under notice"
        reasons.append(Reason(f"{FEATURES[index].name}:{counter}:{horizon}", value, baseline, text))
    return reasons


def out_of_scope_reason(snapshot: Snapshot) -> Reason:
    """The `reads_outside_usual_scope` rule's reason: today's rows outside the usual scope against the
    own usual of such rows and of all personal-data rows (the rule judges only people with history)."""
    i, own = C.OUT_OF_SCOPE_ROWS, snapshot.own
    value = snapshot.day_counts[i]
    usual, high, all_rows = (own.day_p50[i], own.day_p95[i], own.day_p50[C.SENSITIVE_ROWS]) if own else (0.0, 0.0, 0.0)
    text = (f"reading outside the usual scope: {value:,.0f} personal-data rows today from statements with a filter "
            f"value this person does not usually use in them (another city, station or branch than their own); "
            f"own usual {usual:,.0f} (95th percentile {high:,.0f}) such rows per day, of {all_rows:,.0f} "
            f"personal-data rows on a usual day")
    return Reason("out_of_scope:out_of_scope_rows:day", value, high, text)


def off_hours_new_source_reason(snapshot: Snapshot) -> Reason:
    """The `off_hours_read_from_new_source` rule's reason: today's off-hours and never-seen-source rows,
    the share of the day at rare hours, and the own usual of off-hours rows (the rule needs history)."""
    day, own = snapshot.day_counts, snapshot.own
    value = day[C.OFF_HOURS_ROWS]
    usual, high = (own.day_p50[C.OFF_HOURS_ROWS], own.day_p95[C.OFF_HOURS_ROWS]) if own else (0.0, 0.0)
    text = (f"off hours from a never-seen source: {value:,.0f} personal-data rows read outside working hours "
            f"today, {day[C.NEW_SOURCE_ROWS]:,.0f} from an address or application this person never used; "
            f"{day[C.RARE_HOUR]:,.0f} of today's {day[C.STATEMENTS]:,.0f} statements at hours they rarely work; "
            f"own usual {usual:,.0f} (95th percentile {high:,.0f}) off-hours personal-data rows per day")
    return Reason("off_hours_new_source:off_hours_sensitive_rows:day", value, high, text)


def _sustained_text(excess: float, counter: int, history: list, days: int = 4) -> str:
    previous = ", ".join(f"{counts[counter]:,.0f}" for _, counts, _ in history[-days:])
    return (f"above own usual day after day (sustained excess {excess:.1f}; one busy day adds at most "
            f"{CAP - ALLOWANCE:.1f}); previous active days: {previous or 'none'}; ")


def _value(horizon: str, counter: int, snapshot: Snapshot) -> float:
    if horizon == "hour":
        return snapshot.hour_counts[counter]
    if horizon == "week":
        today = snapshot.day_counts[counter]
        return snapshot.week_prior[counter] + today - max(snapshot.week_prior_max[counter], today)
    return snapshot.day_counts[counter]


def _level(baseline, horizon: str, counter: int) -> tuple[float, float]:
    return getattr(baseline, f"{horizon}_p50")[counter], getattr(baseline, f"{horizon}_p95")[counter]


def evidence(day: list[float], seen: DayEvidence, fingerprints: dict[str, str], extra: dict | None = None) -> dict:
    """Counts (`day`), relations, categories and fingerprints of the person's day, as of `seen`."""
    relations = sorted(seen.relations.items(), key=lambda kv: -kv[1])[:MAX_EVIDENCE_ITEMS]
    top_fps = sorted(seen.fingerprints.items(), key=lambda kv: (-kv[1][1], -kv[1][0]))[:MAX_EVIDENCE_ITEMS]
    result = {
        "statements_today": int(day[C.STATEMENTS]),
        "sensitive_rows_today": int(day[C.SENSITIVE_ROWS]),
        "sensitive_statements_today": int(day[C.SENSITIVE_STATEMENTS]),
        "objects": [{"relation": name, "rows": int(rows)} for name, rows in relations],
        "categories": sorted({c for c in C.CATEGORY_ROWS if day[C.CATEGORY_ROWS[c]] > 0}),
        "columns": sorted(seen.columns)[:20],
        "fingerprints": [{"id": fp, "fingerprint": fingerprints.get(fp, "")[:MAX_FINGERPRINT_CHARS],
                          "statements": int(n), "rows": int(rows)} for fp, (n, rows) in top_fps],
        "new_sources_today": seen.new_sources,
    }
    if extra:
        result.update(extra)
    return result
