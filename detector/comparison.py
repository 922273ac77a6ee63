"""The two baselines every evaluation is reported beside, run on the same events.

- static volume rules: one statement reading >= 10,000 personal-data rows, or
  >= 20,000 in a person's local day;
- a plain isolation forest on raw per-employee-day counts, fitted on the
  training events with the same alert budget, alerting at a day's last event.
They share the detector's SQL analysis and catalog, so they see the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from detector.access import AccessProfiler
from detector.events import AccessEvent
from detector.evaluation import Detection
from detector.model import ForestSettings, budget_threshold
from detector.pipeline import ReferenceData

STATEMENT_ROWS = 10_000
DAY_ROWS = 20_000
RAW_COUNTS = ("statements", "rows", "sensitive_rows", "sensitive_statements", "failed", "distinct_relations")


@dataclass
class DayCounts:
    """Raw counts per (employee, local day), plus the first static-rule hit and the last event time."""

    counts: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    relations: dict[tuple[str, int], set] = field(default_factory=dict)
    last_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    static_hits: dict[tuple[str, int], int] = field(default_factory=dict)


def count_days(batches: Iterable[list[AccessEvent]], refs: ReferenceData) -> DayCounts:
    profiler = AccessProfiler(refs.catalog)
    result = DayCounts()
    for batch in batches:
        for event in batch:
            employee = refs.directory.resolve(event.employee_id, event.db_user)
            who = employee.employee_id if employee else (event.employee_id or event.db_user)
            key = (who, refs.calendar.local(event.ts_ms).day)
            row = result.counts.get(key)
            if row is None:
                row = result.counts[key] = [0.0] * len(RAW_COUNTS)
                result.relations[key] = set()
            profile, _ = profiler.profile(event)
            sensitive = (event.rows or 0) if profile.reads_personal_data and not profile.aggregate else 0
            row[0] += 1
            row[1] += event.rows or 0
            row[2] += sensitive
            row[3] += profile.reads_personal_data
            row[4] += not event.success
            result.relations[key].update(profile.relations)
            row[5] = len(result.relations[key])
            result.last_ms[key] = event.ts_ms
            if key not in result.static_hits and (sensitive >= STATEMENT_ROWS or row[2] >= DAY_ROWS):
                result.static_hits[key] = event.ts_ms
    return result


def static_rule_detections(days: DayCounts) -> list[Detection]:
    return [Detection(who, ts) for (who, _), ts in days.static_hits.items()]


def daily_forest_detections(train: DayCounts, test: DayCounts, settings: ForestSettings) -> list[Detection]:
    keys = list(train.counts)
    matrix = np.log1p(np.array([train.counts[k] for k in keys]))
    forest = IsolationForest(n_estimators=settings.n_estimators, max_samples=min(settings.max_samples, len(keys)),
                             random_state=settings.random_state).fit(matrix)
    day_ids = np.array([f"{who}|{day}" for who, day in keys])
    threshold = budget_threshold(-forest.score_samples(matrix), day_ids, settings)
    test_keys = list(test.counts)
    scores = -forest.score_samples(np.log1p(np.array([test.counts[k] for k in test_keys])))
    return [Detection(who, test.last_ms[(who, day)]) for (who, day), s in zip(test_keys, scores) if s > threshold]
