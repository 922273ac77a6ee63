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
from detector.baseline import MIN_SPREAD, Baseline, standardised_excess
from detector.calendar import WorkCalendar, is_period_day
from detector.directory import SERVICE_ROLE, Employee
from detector.state import Snapshot
from detector.sustained import TRACKED

HORIZONS = ("hour", "day", "week")
REFERENCES = ("own", "peers")
CATEGORY_COUNTERS = tuple(f"{c}_rows" for c in ("national_id", "phone", "address", "financial", "name"))
SUSTAINED = "sustained_excess"     # the one feature not read off cells: the pipeline supplies it


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
                "LIMIT/OFFSET or keyset pages through personal data"),
    FeatureSpec("bulk_shapes", _cells(("sensitive_exports", "unbounded_sensitive_reads", "unknown_row_sensitive_reads"),
                                      "day", REFERENCES),
                "exports, reads without WHERE or LIMIT, and reads of untold size"),
    FeatureSpec("off_hours", _cells(("off_hours_sensitive_rows", "off_hours_statements"), "day", REFERENCES),
                "activity outside the calendar's working hours"),
    FeatureSpec("rare_hours", _cells("rare_hour_statements", "day", "own"),
                "statements at hours this person rarely works"),
    FeatureSpec("new_sources", _cells(("new_source_sensitive_rows", "new_sources"), ("hour", "day"), "own"),
                "personal data read from a never-seen client address or application"),
    FeatureSpec("out_of_scope", _cells("out_of_scope_rows", ("hour", "day"), "own"),
                "personal-data rows read with filter values outside the person's usual scope (other cities, stations)"),
    FeatureSpec("new_columns", _cells(("new_sensitive_columns", "new_relations"), "day", "own"),
                "personal-data columns and relations never read before"),
    FeatureSpec("new_column_reads", _cells("new_column_statements", ("hour", "day"), "own"),
                "statements reading personal-data columns first read today (a new kind of data, read again and again)"),
    FeatureSpec("breadth", _cells(("distinct_sensitive_relations", "distinct_sensitive_columns"), "day", REFERENCES),
                "how many personal-data relations and columns were touched"),
    FeatureSpec("failures", _cells(("failed_statements", "failed_logins"), "day", REFERENCES),
                "failed statements and logins"),
    FeatureSpec("activity", _cells(("statements", "rows"), "day", REFERENCES), "overall statements and rows"),
    FeatureSpec("departing_excess", _cells("sensitive_rows", "day", "own"),
                "personal-data rows today over own normal, while under notice (zero otherwise)"),
    FeatureSpec(SUSTAINED, _cells(TRACKED, "day", "own"),
                "personal-data reads above own usual day after day: a CUSUM over days of the daily excess "
                "(slow theft; see `detector.sustained`)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_DEPARTING = FEATURE_NAMES.index("departing_excess")
_SUSTAINED = FEATURE_NAMES.index(SUSTAINED)
# what a service account is judged on: its workload changes with every release, a stolen credential
# shows as a new client program or address, or as failures
SERVICE_FEATURES = ("new_sources", "failures")
_NOT_FOR_SERVICES = np.array([name not in SERVICE_FEATURES for name in FEATURE_NAMES])
WEEK_MARGIN = 1.0     # a 7-day excess counts up to today's excess plus this: sustained, and still going on
PEER_MARGIN = 1.0     # an excess over peers counts up to the excess over own history plus this


def _cell_index(counter: str, horizon: str, reference: str) -> int:
    return (REFERENCES.index(reference) * len(HORIZONS) + HORIZONS.index(horizon)) * C.N_COUNTERS + C.INDEX[counter]


# rows of Baseline.matrix holding each horizon's median and 95th percentile (hour, day, week)
_MEDIANS = np.array([2, 0, 4])
_HIGHS = np.array([3, 1, 5])
_FEATURE_CELLS = [np.array([_cell_index(*cell) for cell in f.cells]) for f in FEATURES]


class PeerBaselines:
    """Peer-group reference levels, learned at training time and shipped in the model.

    Also the client networks the organisation works from (`networks`: those at
    least two people used during training); None when unknown, and then no
    network counts as foreign. And per role, the statement shapes (fingerprint ids)
    with which its members read personal data in training (`shapes`): a role's
    rare routines, such as a DBA's data-quality check; and those that several
    members ran (`common_shapes`): its routine, which tells whose work a person's
    history holds (`detector.history_fit`)."""

    def __init__(self, groups: dict[str, Baseline], roles: dict[str, Baseline], overall: Baseline,
                 networks: frozenset[str] | None = None, shapes: dict[str, frozenset[str]] | None = None,
                 common_shapes: dict[str, frozenset[str]] | None = None) -> None:
        self.groups, self.roles, self.overall = groups, roles, overall
        self.networks = networks
        self.shapes = shapes or {}
        self.common_shapes = common_shapes or {}

    def for_employee(self, employee: Employee | None) -> Baseline:
        if employee is None:
            return self.overall
        return self.groups.get(employee.peer_group) or self.roles.get(employee.role) or self.overall

    def to_dict(self) -> dict:
        data = {"groups": {k: b.to_dict() for k, b in self.groups.items()},
                "roles": {k: b.to_dict() for k, b in self.roles.items()},
                "overall": self.overall.to_dict()}
        if self.networks is not None:
            data["networks"] = sorted(self.networks)
        data["shapes"] = {role: sorted(shapes) for role, shapes in self.shapes.items()}
        data["common_shapes"] = {role: sorted(shapes) for role, shapes in self.common_shapes.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "PeerBaselines":
        networks = data.get("networks")
        return cls({k: Baseline.from_dict(v) for k, v in data["groups"].items()},
                   {k: Baseline.from_dict(v) for k, v in data["roles"].items()},
                   Baseline.from_dict(data["overall"]),
                   None if networks is None else frozenset(networks),
                   {role: frozenset(shapes) for role, shapes in data.get("shapes", {}).items()},
                   {role: frozenset(shapes) for role, shapes in data.get("common_shapes", {}).items()})


@dataclass(slots=True)
class References:
    """The baselines one snapshot is judged against."""

    own: Baseline
    peers: Baseline
    departing: bool
    service: bool = False
    own_from_other_role: bool = False     # own history is another role's work: an excess must exceed peers too


def references_for(own: Baseline | None, employee: Employee | None, peers: PeerBaselines, day: int,
                   own_from_other_role: bool = False) -> References:
    peer = peers.for_employee(employee)
    if employee is None or employee.role == SERVICE_ROLE:
        reference = own or peer
        return References(reference, reference, False, employee is not None)
    departing = employee.is_departing_on(date.fromordinal(day)) if day > 0 else False
    return References(own or peer, peer, departing, own_from_other_role=own is not None and own_from_other_role)


def horizon_values(snapshots: list[Snapshot]) -> np.ndarray:
    """log1p of every counter at every horizon: shape (n, 3 horizons, counters).

    The week horizon is the last 7 days without the busiest one (see
    `baseline.weekly_sums`): it measures sustained behaviour, not one burst."""
    day = np.array([s.day_counts for s in snapshots])
    hour = np.array([s.hour_counts for s in snapshots])
    busiest = np.maximum(np.array([s.week_prior_max for s in snapshots]), day)
    week = np.array([s.week_prior for s in snapshots]) + day - busiest
    return np.log1p(np.stack([hour, day, week], axis=1))


def excess_cells(snapshots: list[Snapshot], references: list[References], values: np.ndarray | None = None) -> np.ndarray:
    """Standardised excess z of every (reference, horizon, counter) cell, flattened per row.

    `values` are the snapshots' `horizon_values` when the caller has them already
    (building them from the counter lists is most of this function's cost)."""
    if values is None:
        values = horizon_values(snapshots)
    cells = []
    for side in REFERENCES:
        levels = np.stack([getattr(r, side).matrix for r in references])   # (n, 6, counters), log1p
        cells.append(standardised_excess(values, levels[:, _MEDIANS], levels[:, _HIGHS]))
    lenient = np.array([r.own_from_other_role for r in references], dtype=bool)
    if lenient.any():      # a history of another role's work: normal for either the old work or the new
        cells[0][lenient] = np.minimum(cells[0][lenient], cells[1][lenient])
    return np.stack(cells, axis=1).reshape(len(snapshots), -1)


SURGE_Z = 3.0                 # a day cell at least this high: the member is surging on that counter
PERIOD_CORROBORATION = 1      # surging colleagues that explain a surge on a month's first/last working days
CORROBORATION = 2             # ... on any other day
_DAY = HORIZONS.index("day")
_N_CELLS = len(REFERENCES) * len(HORIZONS) * C.N_COUNTERS




class CohortLevels:
    """What a whole role is doing today, so that organisation-wide peaks are not individual anomalies.

    A sales festival, a month-end close or a system release lifts a role at once;
    exfiltration lifts one person. Two judgements, both against the members of
    the person's role active the same local day, on the same stream:

    - level: each snapshot's excess cells are reduced by the median cells of its
      role's members (when at least `min_members` are; one person barely moves
      that median), as of the end of the previous tick: a whole role lifted.
    - shared surge: when colleagues surge on the same counter today (their day
      cell at least `surge_z`), the person's excess on that counter (every
      horizon) is judged against what those colleagues read today instead: only
      reading more than they do counts. On a month's first and last working days
      (`is_period_day`: closes, settlements, reports) one such colleague is
      enough, on other days `corroboration` are needed, so that one colleague's
      busy day never hides a theft. Colleagues of the same tick count, so two
      people starting a month-end pull together explain each other.

    Levels are kept per stream and advanced tick by tick in event time, so they
    depend only on the stream's order, never on batch boundaries. Each member's
    memory is its raw cells followed by its log1p day counts (`memory_rows`).
    """

    def __init__(self, min_members: int = 5, calendar: WorkCalendar | None = None, surge_z: float = SURGE_Z,
                 period_corroboration: int = PERIOD_CORROBORATION, corroboration: int = CORROBORATION) -> None:
        self.min_members = min_members
        self.calendar = calendar
        self.surge_z = surge_z
        self.period_corroboration, self.corroboration = period_corroboration, corroboration
        self._latest: dict[tuple[int, str, int], dict[str, np.ndarray]] = {}   # (stream, role, day) -> member -> memory

    @staticmethod
    def memory_rows(snapshots: list[Snapshot], cells: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """What the cohort keeps of each snapshot: its raw cells, then log1p of its day counts
        (from `values`, the snapshots' `horizon_values`, when the caller has them already)."""
        if values is None:
            values = horizon_values(snapshots)
        return np.hstack([cells, values[:, _DAY, :]])

    def adjust(self, snapshots: list[Snapshot], roles: list[str | None], cells: np.ndarray,
               memory: np.ndarray | None = None) -> np.ndarray:
        """Cells judged against their cohort; the cohort learns these snapshots, tick by tick.

        `memory` is `memory_rows(snapshots, cells)` when the caller has it already."""
        adjusted = cells.copy()
        if memory is None:
            memory = self.memory_rows(snapshots, cells)
        ticks: dict[tuple[int, int], list[int]] = {}
        for i, snapshot in enumerate(snapshots):
            if roles[i] is not None:
                ticks.setdefault((snapshot.partition, snapshot.tick_end_ms), []).append(i)
        for _, members in sorted(ticks.items()):
            groups: dict[tuple[int, str, int], list[int]] = {}
            for i in members:
                groups.setdefault((snapshots[i].partition, roles[i], snapshots[i].day), []).append(i)
            for group, indices in groups.items():
                level = self._level(group)
                if level is not None:
                    adjusted[indices] = np.maximum(cells[indices] - level, 0.0)
                known = self._latest.setdefault(group, {})
                for i in indices:
                    known[snapshots[i].key] = memory[i]
                self._shared_surge(group, [snapshots[i].key for i in indices], memory[indices], adjusted, indices)
        self._forget_old_days()
        return adjusted

    def remember(self, stream: int, role: str, day: int, key: str, cells: np.ndarray) -> None:
        """Re-learn one member's latest memory row, from a restored state (rows of another layout are ignored)."""
        if len(cells) == _N_CELLS + C.N_COUNTERS:
            self._latest.setdefault((stream, role, day), {})[key] = cells

    def _level(self, group: tuple[int, str, int]) -> np.ndarray | None:
        members = self._latest.get(group)
        if not members or len(members) < self.min_members:
            return None
        return column_median(np.stack(list(members.values()))[:, :_N_CELLS])

    def _shared_surge(self, group: tuple[int, str, int], keys: list[str], rows: np.ndarray,
                      adjusted: np.ndarray, indices: list[int]) -> None:
        """Limit each member's excess on counters colleagues surge on today to what exceeds those colleagues."""
        period = self.calendar is not None and is_period_day(self.calendar, group[2])
        k = self.period_corroboration if period else self.corroboration
        known = self._latest[group]
        if len(known) <= k:
            return
        names = list(known)
        everyone = np.stack([known[n] for n in names])                          # (m, cells + counters)
        m = len(names)
        day_cells = everyone[:, :_N_CELLS].reshape(m, len(REFERENCES), len(HORIZONS), C.N_COUNTERS)[:, :, _DAY]
        surging = day_cells >= self.surge_z                                      # (m, refs, counters)
        if not (surging.sum(axis=0) >= k).any():
            return
        values = np.where(surging, everyone[:, None, _N_CELLS:], -np.inf)        # (m, refs, counters)
        order = np.argsort(-values, axis=0, kind="stable")
        ranked = np.take_along_axis(values, order, axis=0)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(m)[:, None, None], axis=0)
        kth = ranked[k - 1]
        kth_next = ranked[k] if m > k else np.full_like(kth, -np.inf)
        position = {n: j for j, n in enumerate(names)}
        for key, row, i in zip(keys, rows, indices):
            j = position[key]
            others = np.where(rank[j] < k, kth_next, kth)                        # k-th largest surging colleague
            if not np.isfinite(others).any():
                continue
            limit = np.where(np.isfinite(others), np.maximum((row[_N_CELLS:] - others) / MIN_SPREAD, 0.0), np.inf)
            cells = adjusted[i].reshape(len(REFERENCES), len(HORIZONS), C.N_COUNTERS)
            adjusted[i] = np.minimum(cells, limit[:, None, :]).reshape(-1)

    def _forget_old_days(self) -> None:
        if len(self._latest) > 512:
            newest = max(day for _, _, day in self._latest)
            for group in [g for g in self._latest if g[2] < newest - 1]:
                del self._latest[group]


def column_median(rows: np.ndarray) -> np.ndarray:
    """``np.median(rows, axis=0)``, bit for bit, without its generic machinery (most of its
    cost on a cohort's few dozen rows): the middle row of the sorted columns, or the mean of
    the middle two computed as np.mean does, (a + b) / 2; a column with a NaN is NaN."""
    ordered = np.sort(rows, axis=0)
    half = len(ordered) // 2
    median = ordered[half].copy() if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
    median[np.isnan(ordered[-1])] = np.nan   # np.sort puts NaN last
    return median


def judged_cells(cells: np.ndarray) -> np.ndarray:
    """Cells as the features read them: corroborated by what the person does today and by their own history.

    - a 7-day excess counts up to today's excess on the same counter plus
      `WEEK_MARGIN`: the week horizon is for behaviour that goes on, not for the
      week after a one-off (which the day horizon judged when it happened);
    - an excess over peers counts up to the excess over the person's own history
      plus `PEER_MARGIN`: someone who has always read more than their peers is
      not anomalous for it, and once they do it (a month-end close) their own
      history knows it while the peers' levels, fixed at training, never will.
    For people without history of their own, own levels are the peers' anyway."""
    n = len(cells)
    judged = cells.reshape(n, len(REFERENCES), len(HORIZONS), C.N_COUNTERS).copy()
    week, day = HORIZONS.index("week"), HORIZONS.index("day")
    judged[:, :, week] = np.minimum(judged[:, :, week], judged[:, :, day] + WEEK_MARGIN)
    own, peers = REFERENCES.index("own"), REFERENCES.index("peers")
    judged[:, peers] = np.minimum(judged[:, peers], judged[:, own] + PEER_MARGIN)
    return judged.reshape(n, -1)


def feature_matrix(snapshots: list[Snapshot], references: list[References], cells: np.ndarray | None = None,
                   sustained: np.ndarray | None = None) -> np.ndarray:
    """One row per snapshot, columns in `FEATURE_NAMES` order, from judged cells (`judged_cells`).

    `sustained` is each row's sustained excess (`detector.sustained`; zero when not given)."""
    if cells is None:
        cells = judged_cells(excess_cells(snapshots, references))
    matrix = np.column_stack([cells[:, idx].max(axis=1) for idx in _FEATURE_CELLS])
    matrix[:, _SUSTAINED] = 0.0 if sustained is None else sustained
    departing = np.array([r.departing for r in references], dtype=bool)
    matrix[:, _DEPARTING] = np.where(departing, matrix[:, _DEPARTING], 0.0)
    service = np.array([r.service for r in references], dtype=bool)
    if service.any():
        matrix[np.ix_(service, _NOT_FOR_SERVICES)] = 0.0
    return matrix


# the own excess today of each counter the sustained excess tracks, in `TRACKED` order
SUSTAINED_CELLS = _FEATURE_CELLS[_SUSTAINED]


def top_cells(cells_row: np.ndarray, feature_index: int) -> tuple[str, str, str]:
    """The (counter, horizon, reference) cell that gave a feature its value."""
    idx = _FEATURE_CELLS[feature_index]
    return FEATURES[feature_index].cells[int(np.argmax(cells_row[idx]))]


