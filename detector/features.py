"""Snapshots to feature vectors: each count judged against own history and peers.

A count is scored as a one-sided, standardised log excess over its reference:

    z = max(0, (log1p(value) - log1p(median)) / max(log1p(p95) - log1p(median), log 2))

i.e. how many "usual spreads" above the median it is. Being quieter than usual
never scores. z is computed for every counter at three horizons (last hour,
today, last 7 days) against the person's own history and against their peer
group (role in department); a person without enough history is judged against
their peers, service accounts and unresolved accounts only against themselves.

The model sees a compact set of behaviour features, each the largest z of a few
related (counter, horizon, reference) cells: an isolation forest isolates an
anomaly faster when the evidence is concentrated in few dimensions. Everything
here is vectorised over a batch of snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from detector import counters as C
from detector.baseline import Baseline
from detector.directory import SERVICE_ROLE, Employee
from detector.state import Snapshot

MIN_SPREAD = float(np.log(2.0))
HORIZONS = ("hour", "day", "week")
REFERENCES = ("own", "peers")
CATEGORY_COUNTERS = tuple(f"{c}_rows" for c in ("national_id", "phone", "address", "financial", "name"))


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    cells: tuple[tuple[str, str, str], ...]    # (counter, horizon, reference) whose largest z is the feature
    meaning: str


def _cells(counters: tuple[str, ...] | str, horizons: tuple[str, ...] | str, references: tuple[str, ...] | str):
    as_tuple = (lambda x: (x,) if isinstance(x, str) else x)
    return tuple((c, h, r) for c in as_tuple(counters) for h in as_tuple(horizons) for r in as_tuple(references))


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("sensitive_rows_vs_own", _cells("sensitive_rows", ("hour", "day"), "own"),
                "personal-data rows in the last hour or today, against own history"),
    FeatureSpec("sensitive_rows_vs_peers", _cells("sensitive_rows", ("hour", "day"), "peers"),
                "personal-data rows in the last hour or today, against the peer group"),
    FeatureSpec("sensitive_rows_week", _cells(("sensitive_rows", "sensitive_statements"), "week", "own"),
                "personal-data rows and statements over the last 7 days, against own 7-day history (slow theft)"),
    FeatureSpec("category_rows_vs_own", _cells(CATEGORY_COUNTERS, ("day", "week"), "own"),
                "rows of one category (national ID, phone, address, financial, name), against own history"),
    FeatureSpec("category_rows_vs_peers", _cells(CATEGORY_COUNTERS, "day", "peers"),
                "rows of one category today, against the peer group"),
    FeatureSpec("sensitive_statements", _cells("sensitive_statements", ("hour", "day"), REFERENCES),
                "statements reading personal data, against own history and peers"),
    FeatureSpec("point_lookups", _cells("sensitive_point_lookups", ("hour", "day"), "own"),
                "single-key lookups of personal data, against own history"),
    FeatureSpec("sequential_lookups", _cells("sequential_key_lookups", HORIZONS, REFERENCES),
                "lookups walking consecutive keys (enumeration)"),
    FeatureSpec("offset_paging", _cells("offset_pages", HORIZONS, REFERENCES),
                "LIMIT/OFFSET pages through personal data"),
    FeatureSpec("bulk_shapes", _cells(("sensitive_exports", "unbounded_sensitive_reads", "unknown_row_sensitive_reads"),
                                      "day", REFERENCES),
                "exports, reads without WHERE or LIMIT, and reads of untold size"),
    FeatureSpec("off_hours", _cells(("off_hours_sensitive_rows", "off_hours_statements"), "day", REFERENCES),
                "activity outside the calendar's working hours"),
    FeatureSpec("rare_hours", _cells("rare_hour_statements", "day", "own"),
                "statements at hours this person rarely works"),
    FeatureSpec("new_sources", _cells(("new_source_sensitive_rows", "new_sources"), ("hour", "day"), "own"),
                "personal data read from a never-seen client address or application"),
    FeatureSpec("new_columns", _cells(("new_sensitive_columns", "new_relations"), "day", "own"),
                "personal-data columns and relations never read before"),
    FeatureSpec("breadth", _cells(("distinct_sensitive_relations", "distinct_sensitive_columns"), "day", REFERENCES),
                "how many personal-data relations and columns were touched"),
    FeatureSpec("failures", _cells(("failed_statements", "failed_logins"), "day", REFERENCES),
                "failed statements and logins"),
    FeatureSpec("activity", _cells(("statements", "rows"), "day", REFERENCES), "overall statements and rows"),
    FeatureSpec("departing_excess", _cells("sensitive_rows", "day", "own"),
                "personal-data rows today over own normal, while under notice (zero otherwise)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_DEPARTING = FEATURE_NAMES.index("departing_excess")


def _cell_index(counter: str, horizon: str, reference: str) -> int:
    return (REFERENCES.index(reference) * len(HORIZONS) + HORIZONS.index(horizon)) * C.N_COUNTERS + C.INDEX[counter]


# rows of Baseline.matrix holding each horizon's median and 95th percentile (hour, day, week)
_MEDIANS = np.array([2, 0, 4])
_HIGHS = np.array([3, 1, 5])
_FEATURE_CELLS = [np.array([_cell_index(*cell) for cell in f.cells]) for f in FEATURES]


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


def horizon_values(snapshots: list[Snapshot]) -> np.ndarray:
    """log1p of every counter at every horizon: shape (n, 3 horizons, counters)."""
    day = np.array([s.day_counts for s in snapshots])
    hour = np.array([s.hour_counts for s in snapshots])
    week = np.array([s.week_prior for s in snapshots]) + day
    return np.log1p(np.stack([hour, day, week], axis=1))


def excess_cells(snapshots: list[Snapshot], references: list[References]) -> np.ndarray:
    """Standardised excess z of every (reference, horizon, counter) cell, flattened per row."""
    values = horizon_values(snapshots)
    cells = []
    for side in REFERENCES:
        levels = np.stack([getattr(r, side).matrix for r in references])   # (n, 6, counters), log1p
        median, high = levels[:, _MEDIANS], levels[:, _HIGHS]
        spread = np.maximum(high - median, MIN_SPREAD)
        cells.append(np.maximum((values - median) / spread, 0.0))
    return np.stack(cells, axis=1).reshape(len(snapshots), -1)


class CohortLevels:
    """What a whole role is doing today, so that organisation-wide peaks are not individual anomalies.

    A sales festival, a month-end close or a system release lifts everyone in a
    role at once; exfiltration lifts one person. Each snapshot's excess cells
    are reduced by the median cells of its role's members active the same local
    day (when at least `min_members` are; one person barely moves that median),
    as of the end of the previous tick. Levels are kept per stream and advanced
    tick by tick in event time, so they depend only on the stream's order, never
    on batch boundaries.
    """

    def __init__(self, min_members: int = 5) -> None:
        self.min_members = min_members
        self._latest: dict[tuple[int, str, int], dict[str, np.ndarray]] = {}   # (stream, role, day) -> member -> cells

    def adjust(self, snapshots: list[Snapshot], roles: list[str | None], cells: np.ndarray) -> np.ndarray:
        """Cells minus their cohort's level; the cohort then learns these snapshots, tick by tick."""
        adjusted = cells.copy()
        ticks: dict[tuple[int, int], list[int]] = {}
        for i, snapshot in enumerate(snapshots):
            if roles[i] is not None:
                ticks.setdefault((snapshot.partition, snapshot.tick_end_ms), []).append(i)
        for _, members in sorted(ticks.items()):
            groups = {i: (snapshots[i].partition, roles[i], snapshots[i].day) for i in members}
            levels = {group: self._level(group) for group in set(groups.values())}
            for i, group in groups.items():
                if levels[group] is not None:
                    adjusted[i] = np.maximum(cells[i] - levels[group], 0.0)
            for i, group in groups.items():
                self._latest.setdefault(group, {})[snapshots[i].key] = cells[i]
        self._forget_old_days()
        return adjusted

    def remember(self, stream: int, role: str, day: int, key: str, cells: np.ndarray) -> None:
        """Re-learn one member's latest cells, from a restored state."""
        self._latest.setdefault((stream, role, day), {})[key] = cells

    def _level(self, group: tuple[int, str, int]) -> np.ndarray | None:
        members = self._latest.get(group)
        if not members or len(members) < self.min_members:
            return None
        return np.median(np.stack(list(members.values())), axis=0)

    def _forget_old_days(self) -> None:
        if len(self._latest) > 512:
            newest = max(day for _, _, day in self._latest)
            for group in [g for g in self._latest if g[2] < newest - 1]:
                del self._latest[group]


def feature_matrix(snapshots: list[Snapshot], references: list[References], cells: np.ndarray | None = None) -> np.ndarray:
    """One row per snapshot, columns in `FEATURE_NAMES` order."""
    if cells is None:
        cells = excess_cells(snapshots, references)
    matrix = np.column_stack([cells[:, idx].max(axis=1) for idx in _FEATURE_CELLS])
    departing = np.array([r.departing for r in references], dtype=bool)
    matrix[:, _DEPARTING] = np.where(departing, matrix[:, _DEPARTING], 0.0)
    return matrix


def top_cells(cells_row: np.ndarray, feature_index: int) -> tuple[str, str, str]:
    """The (counter, horizon, reference) cell that gave a feature its value."""
    idx = _FEATURE_CELLS[feature_index]
    return FEATURES[feature_index].cells[int(np.argmax(cells_row[idx]))]


