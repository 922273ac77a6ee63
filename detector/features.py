"""Snapshots to feature vectors: each count judged against own history and peers.

Every feature is a one-sided log ratio, `max(0, log1p(value) - log1p(reference))`:
zero while a person stays within their usual range, growing with how far they
exceed it. Being quieter than usual is never suspicious, so it never scores.
A person without enough history is judged against their peer group (role in
department); service accounts and unresolved accounts only against themselves.
Everything here is vectorised over a batch of snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from detector import counters as C
from detector.baseline import Baseline
from detector.directory import SERVICE_ROLE, Employee
from detector.state import Snapshot

HOUR_COUNTERS = ("sensitive_rows", "sensitive_statements", "sensitive_point_lookups", "sequential_key_lookups",
                 "offset_pages", "sensitive_exports", "new_source_sensitive_rows")
WEEK_COUNTERS = ("sensitive_rows", "sensitive_statements", "sequential_key_lookups", "offset_pages",
                 "national_id_rows", "financial_rows", "distinct_sensitive_columns")
_HOUR_IDX = np.array([C.INDEX[n] for n in HOUR_COUNTERS])
_WEEK_IDX = np.array([C.INDEX[n] for n in WEEK_COUNTERS])


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    counter: str
    horizon: str      # hour, day, week
    reference: str    # own, peers
    meaning: str


def _specs() -> tuple[FeatureSpec, ...]:
    specs = [FeatureSpec(f"day_vs_own:{n}", n, "day", "own", f"today's {m} vs own daily 95th percentile")
             for n, m in C.COUNTER_MEANINGS.items()]
    specs += [FeatureSpec(f"day_vs_peers:{n}", n, "day", "peers", f"today's {m} vs peers' daily 95th percentile")
              for n, m in C.COUNTER_MEANINGS.items()]
    specs += [FeatureSpec(f"hour_vs_own:{n}", n, "hour", "own", f"last hour's {C.COUNTER_MEANINGS[n]} vs own busiest-hour 95th percentile")
              for n in HOUR_COUNTERS]
    specs += [FeatureSpec(f"week_vs_own:{n}", n, "week", "own", f"last 7 days' {C.COUNTER_MEANINGS[n]} vs own 7-day 95th percentile")
              for n in WEEK_COUNTERS]
    specs.append(FeatureSpec("departing:sensitive_rows", "sensitive_rows", "day", "own",
                             "excess of today's personal-data rows over own normal while under notice"))
    return tuple(specs)


FEATURES: tuple[FeatureSpec, ...] = _specs()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_DAY_OWN_SENSITIVE_ROWS = C.SENSITIVE_ROWS


class PeerBaselines:
    """Peer-group reference levels, learned at training time and shipped in the model."""

    def __init__(self, groups: dict[str, Baseline], roles: dict[str, Baseline], overall: Baseline) -> None:
        self.groups, self.roles, self.overall = groups, roles, overall

    def for_employee(self, employee: Employee | None) -> Baseline:
        if employee is None:
            return self.overall
        return self.groups.get(employee.peer_group) or self.roles.get(employee.role) or self.overall

    def to_dict(self) -> dict:
        return {"groups": {k: b.to_dict() for k, b in self.groups.items()},
                "roles": {k: b.to_dict() for k, b in self.roles.items()},
                "overall": self.overall.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "PeerBaselines":
        return cls({k: Baseline.from_dict(v) for k, v in data["groups"].items()},
                   {k: Baseline.from_dict(v) for k, v in data["roles"].items()},
                   Baseline.from_dict(data["overall"]))


@dataclass(slots=True)
class References:
    """The baselines one snapshot is judged against."""

    own: Baseline
    peers: Baseline
    departing: bool


def references_for(own: Baseline | None, employee: Employee | None, peers: PeerBaselines, day: int) -> References:
    peer = peers.for_employee(employee)
    if employee is None or employee.role == SERVICE_ROLE:
        reference = own or peer
        return References(reference, reference, False)
    departing = employee.is_departing_on(date.fromordinal(day)) if day > 0 else False
    return References(own or peer, peer, departing)


def feature_matrix(snapshots: list[Snapshot], references: list[References]) -> np.ndarray:
    """One row per snapshot, columns in `FEATURE_NAMES` order."""
    day = np.log1p(np.array([s.day_counts for s in snapshots]))
    hour = np.log1p(np.array([s.hour_counts for s in snapshots])[:, _HOUR_IDX])
    week = np.log1p((np.array([s.week_prior for s in snapshots]) + np.expm1(day))[:, _WEEK_IDX])
    own_day = np.log1p(np.array([r.own.day_p95 for r in references]))
    peer_day = np.log1p(np.array([r.peers.day_p95 for r in references]))
    own_hour = np.log1p(np.array([r.own.hour_p95 for r in references])[:, _HOUR_IDX])
    own_week = np.log1p(np.array([r.own.week_p95 for r in references])[:, _WEEK_IDX])
    departing = np.array([r.departing for r in references], dtype=float)
    day_vs_own = day - own_day
    columns = [day_vs_own, day - peer_day, hour - own_hour, week - own_week,
               (departing * day_vs_own[:, _DAY_OWN_SENSITIVE_ROWS])[:, None]]
    return np.maximum(np.hstack(columns), 0.0)
