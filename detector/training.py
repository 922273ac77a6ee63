"""Training: learn baselines and the forest from a baseline period of events.

Two passes over the same events through the ordinary pipeline: the first learns
each person's daily history, from which peer-group baselines are computed; the
second replays with those peers, collecting the feature rows the forest is
fitted on and the employee-days its threshold is calibrated on. The second
pass's per-person state is what scoring continues from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import copy
from dataclasses import dataclass
from datetime import date

import numpy as np

from detector.baseline import Baseline, group_baseline
from detector.calendar import baseline_coverage
from detector.counters import STATEMENTS, zeros
from detector.directory import Directory
from detector.events import AccessEvent
from detector.features import PeerBaselines
from detector.history_fit import common_shapes
from detector.model import AnomalyModel, ForestSettings, fit_model
from detector.pipeline import UNRESOLVED_PREFIX, DetectionPipeline, ReferenceData, Scoring
from detector.rules import RuleSettings
from detector.state import EmployeeState

EventSource = Callable[[], Iterable[list[AccessEvent]]]


@dataclass
class TrainingResult:
    scoring: Scoring
    anomaly: AnomalyModel
    states: dict[str, EmployeeState]
    summary: dict


def train(batches: EventSource, refs: ReferenceData, forest: ForestSettings, rules: RuleSettings) -> TrainingResult:
    """Fit a model on the events that `batches()` yields (called twice)."""
    first = _run(batches, refs, Scoring(peers=_flat_peers()), rules, collect=False)
    peers = peer_baselines(first.states, refs.directory)
    second = _run(batches, refs, Scoring(peers=_without_routines(peers)), rules, collect=True)
    if not second.collected_rows:
        raise ValueError("training events produced no activity to learn from")
    matrix = np.vstack(second.collected_rows)
    day_ids = np.asarray(second.collected_days)
    anomaly = fit_model(matrix, day_ids, forest)
    scores = anomaly.score(matrix)
    summary = _summary(second, matrix, day_ids, scores, anomaly)
    return TrainingResult(Scoring(peers=peers, anomaly=anomaly), anomaly, second.states, summary)


def _run(batches: EventSource, refs: ReferenceData, scoring: Scoring, rules: RuleSettings, collect: bool) -> DetectionPipeline:
    pipeline = DetectionPipeline(refs, scoring, rules, collect_snapshots=collect)
    for batch in batches():
        pipeline.process(batch)
    pipeline.finish()
    return pipeline


def peer_baselines(states: dict[str, EmployeeState], directory: Directory) -> PeerBaselines:
    """Per peer group, per role and overall, from every person's active days."""
    groups: dict[str, list] = {}
    roles: dict[str, list] = {}
    shapes: dict[str, set[str]] = {}
    scopes: list = []
    everyone: list = []
    for key, state in states.items():
        employee = directory.employees.get(state.employee_id)
        if key.startswith(UNRESOLVED_PREFIX) or employee is None:
            continue
        days = _active_days(state)
        if not days:
            continue
        person = ([d for d, _, _ in days], np.array([c for _, c, _ in days]), np.array([h for _, _, h in days]))
        groups.setdefault(employee.peer_group, []).append(person)
        roles.setdefault(employee.role, []).append(person)
        shapes.setdefault(employee.role, set()).update(state.scope.shapes)
        if not employee.is_service_account:
            everyone.append(person)
            scopes.append((employee.role, state.scope))
    return PeerBaselines({k: group_baseline(v) for k, v in groups.items()},
                         {k: group_baseline(v) for k, v in roles.items()},
                         group_baseline(everyone) if everyone else _flat_baseline(),
                         organisation_networks(states.values()),
                         {role: frozenset(fps) for role, fps in shapes.items()}, common_shapes(scopes))


def _without_routines(peers: PeerBaselines) -> PeerBaselines:
    """The peers as the forest and its threshold are fitted against: without the role-change leniency
    (`detector.history_fit`). The alert budget is a ceiling; calibrated with the leniency, the alerts it
    saves on people moved between roles would be spent on everyone else by a lower threshold."""
    judged = copy(peers)
    judged.common_shapes = {}
    return judged


def organisation_networks(states: Iterable[EmployeeState]) -> frozenset[str]:
    """Client networks anyone (people and services) worked from in training: offices, VPN pools, data centres."""
    return frozenset(network for state in states for network in state.seen_networks)


def _active_days(state: EmployeeState) -> list[tuple[int, list[float], list[float]]]:
    days = list(state.history)
    if state.day_counts[STATEMENTS] > 0:
        days.append((state.day, state.day_counts, state.day_hour_max))
    return days


def _flat_baseline() -> Baseline:
    return Baseline(zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), 0)


def _flat_peers() -> PeerBaselines:
    return PeerBaselines({}, {}, _flat_baseline())


def _summary(pipeline: DetectionPipeline, matrix: np.ndarray, day_ids: np.ndarray, scores: np.ndarray,
             anomaly: AnomalyModel) -> dict:
    employee_days = len(np.unique(day_ids))
    over = len(np.unique(day_ids[scores > anomaly.threshold]))
    days = sorted({int(d.rsplit("|", 1)[1]) for d in np.unique(day_ids)})
    return {
        "events": pipeline.stats.events,
        "employees": len(pipeline.states),
        "unresolved_accounts": sorted(pipeline.stats.unresolved_accounts),
        "employee_days": employee_days,
        "feature_rows": int(len(matrix)),
        "nonzero_rows": int(matrix.any(axis=1).sum()),
        "period_start": date.fromordinal(days[0]).isoformat() if days else None,
        "period_end": date.fromordinal(days[-1]).isoformat() if days else None,
        "calendar": baseline_coverage(pipeline.refs.calendar, days[0], days[-1]) if days else None,
        "model_alert_days_per_1000": round(1000.0 * over / max(employee_days, 1), 3),
        "rule_alerts": dict(pipeline.stats.alerts),
        "rule_alerts_per_1000_days": round(1000.0 * sum(pipeline.stats.alerts.values()) / max(employee_days, 1), 3),
    }
