"""Events -> state -> scores -> alerts: the one code path replay, training, the
service, the demo and the tests all drive.

The pipeline does no I/O. Rules are checked per event; model scoring is batched:
when event time crosses a 5-minute tick, every person active in the closed tick
yields a snapshot, and pending snapshots are scored together at the end of each
`process` call (or every `max_pending` snapshots), as one matrix.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from detector import counters as C
from detector.access import AccessProfiler
from detector.alerts import AlertBook, Trigger
from detector.calendar import WorkCalendar, is_period_day
from detector.catalog import Catalog
from detector.directory import Directory, Employee
from detector.events import AccessEvent
from detector.explain import evidence, model_reasons, off_hours_new_source_reason, out_of_scope_reason
from detector.features import (
    FEATURE_NAMES, SUSTAINED, SUSTAINED_CELLS, CohortLevels, PeerBaselines, References, excess_cells, feature_matrix,
    horizon_values, judged_cells, references_for,
)
from detector.history_fit import RoleRoutines
from detector.model import AnomalyModel
from detector.rules import (
    NOTHING_KNOWN, OFF_HOURS_NEW_SOURCE, OUT_OF_SCOPE, PAGING, SUSTAINED_EXCESS, UNFAMILIAR_DATA, OwnHistory, RuleSettings,
    check_rules, may_fire,
)
from detector.state import MAX_FINGERPRINTS, TICK_MS, EmployeeState, Snapshot
from detector.sustained import ALLOWANCE, CAP, MIN_DAY_ROWS, TRACKED_INDEX, SustainedExcess

HOUR_MS = 3600 * 1000
UNRESOLVED_PREFIX = "account:"
_SUSTAINED = FEATURE_NAMES.index(SUSTAINED)
_CATEGORY_OWN = FEATURE_NAMES.index("category_rows_vs_own")
_CATEGORY_PEERS = FEATURE_NAMES.index("category_rows_vs_peers")
_OFFSET_PAGING = FEATURE_NAMES.index("offset_paging")
_FEATURE_RULES = {     # rules on one feature of a scored snapshot: (the feature, how their reason begins)
    UNFAMILIAR_DATA: (_CATEGORY_OWN, "a kind of personal data neither this person nor their peers usually read: "),
    PAGING: (_OFFSET_PAGING, "paging through personal data: "),
}
_COUNT_RULES = {       # rules on a snapshot's counters: (the reason that leads their alert, severity)
    OUT_OF_SCOPE: (out_of_scope_reason, "medium"),
    OFF_HOURS_NEW_SOURCE: (off_hours_new_source_reason, "high"),
}
OUT_OF_SCOPE_MIN_ROWS = 75    # fewer rows outside the usual scope than this are not worth an alert
OUT_OF_SCOPE_OF_DAY = 0.25    # ... nor a day whose reading stays mostly within it (a busy day, one new station)
OFF_HOURS_OWN_TIMES = 2.0     # off-hours rows below this many times the person's usual (95th pct) of them are usual
RARE_HOURS_OF_DAY = 0.5       # ... and a day mostly worked at usual hours is no night-time pull
_NEW_COLUMN_READS = FEATURE_NAMES.index("new_column_reads")
NEW_COLUMN_READS_Z = 2.0     # statements reading columns first read today: from none usually, at least 3
GC_GEN0_THRESHOLD = 50_000


def settle_heap() -> None:
    """Call once everything long-lived is loaded (model, reference data, saved states), before the hot loop.

    The hot path allocates a few objects per event and frees them by reference
    counting, yet with Python's default thresholds the cyclic garbage collector ran
    about 2,000 times in a 740,000-event replay, and each full pass re-scanned the
    millions of objects of the loaded forest and states: 3 s of a 23 s replay.
    Freezing moves what is loaded now out of the collector's sight (it is still freed
    by reference counting), and a higher first threshold lets short-lived objects
    die before a collection looks at them. Cycles among new objects are still
    collected, in larger batches; only a cycle among objects frozen here would
    never be (the loaded model and states form none). Nothing the pipeline
    computes depends on it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


@dataclass(frozen=True)
class ReferenceData:
    directory: Directory
    catalog: Catalog
    calendar: WorkCalendar


@dataclass
class Scoring:
    """What a trained model contributes: the forest (None while training) and peer baselines."""

    peers: PeerBaselines
    anomaly: AnomalyModel | None = None
    version: str = "untrained"


@dataclass
class PipelineStats:
    events: int = 0
    unresolved_events: int = 0
    snapshots: int = 0
    snapshots_scored: int = 0
    alerts: Counter = field(default_factory=Counter)
    unresolved_accounts: set[str] = field(default_factory=set)


class DetectionPipeline:
    def __init__(self, refs: ReferenceData, scoring: Scoring, rules: RuleSettings | None = None,
                 *, collect_snapshots: bool = False, max_pending: int = 20_000) -> None:
        self.refs = refs
        self.scoring = scoring
        self.rules = rules or RuleSettings()
        self.profiler = AccessProfiler(refs.catalog)
        self.alert_book = AlertBook(scoring.version)
        self.cohorts = CohortLevels(calendar=refs.calendar)
        self.states: dict[str, EmployeeState] = {}
        self.seeds: dict[str, EmployeeState] = {}       # baselines from training, copied on first use
        self.stats = PipelineStats()
        self.collected_rows: list[np.ndarray] = []      # feature rows, when collecting for training
        self.collected_days: list[str] = []              # employee-day of each collected row
        self._collect = collect_snapshots
        self._max_pending = max_pending
        self._pending: list[Snapshot] = []
        self._rule_triggers: list[Trigger] = []     # rules' triggers, submitted with the snapshots' (`_score_pending`)
        self.changed: set[str] = set()          # state keys changed since the last `drain_changes`
        self.failures: list[tuple[int, str]] = []   # (index in its batch, reason) of events that raised
        self._dirty: dict[int, dict[str, EmployeeState]] = {}   # per stream (Kafka partition)
        self._watermark: dict[int, int] = {}                       # per stream: latest tick seen
        self._routines = RoleRoutines(scoring.peers.common_shapes)
        self._elsewhere: dict[str, tuple[int, bool]] = {}           # key -> (day, history from another role)

    # -- the hot path -------------------------------------------------------

    def process(self, events: Iterable[AccessEvent], stream: int = 0, score: bool = True) -> list[dict]:
        """Apply a batch of events from one ordered stream; return the alerts raised.

        Ticks close on each stream's own event time, so one person's snapshots
        depend only on their stream's order (one Kafka partition), never on how
        partitions interleave or where batches end. With `score=False` the closed
        ticks (and the rules' triggers) wait for `score_pending()`, so that several
        streams' snapshots are scored as one matrix."""
        alerts: list[dict] = []
        resolve, local_time, profile_of = self.refs.directory.resolve, self.refs.calendar.local, self.profiler.profile
        networks, rules, states = self.scoring.peers.networks, self.rules, self.states
        dirty = self._dirty.setdefault(stream, {})
        watermark = self._watermark.get(stream, -1)
        count = 0
        for event in events:
            count += 1
            tick = event.ts_ms // TICK_MS
            if tick > watermark:
                self._close_ticks(dirty)
                if self._entered_new_day(watermark, tick):
                    alerts.extend(self._score_pending())
                watermark = tick
            try:
                employee = resolve(event.employee_id, event.db_user)
                state = states.get(employee.employee_id) if employee is not None else None
                if state is None:       # an account no one owns, or someone's first event
                    state = self._state_for(employee, event)
                local = local_time(event.ts_ms)
                closed = state.advance(event.ts_ms, local)
                if closed is not None:
                    self._pending.append(closed)
                profile, literals = profile_of(event)
                first_open = profile.open_ended and state.first_open_read(profile)   # before observe learns it
                state.observe(event, local, profile, literals)
                state.partition = stream
                dirty[state.key] = state
                own = self._own_history(state, employee, event, profile, local, first_open)
                if may_fire(event, profile, rules, networks, own):
                    self._check_rules(event, profile, employee, state, own)
            except Exception as exc:  # a bug must not stop the stream: the event is reported, not lost
                self.failures.append((count - 1, f"internal error while scoring this event ({type(exc).__name__})"))
            if len(self._pending) >= self._max_pending:
                alerts.extend(self._score_pending())
        self.stats.events += count
        self._watermark[stream] = watermark
        if score:
            alerts.extend(self._score_pending())
        return alerts

    def score_pending(self) -> list[dict]:
        """Score every snapshot closed so far, as one batch."""
        return self._score_pending()

    def finish(self) -> list[dict]:
        """End of input: close every open tick and score it."""
        for dirty in self._dirty.values():
            self._close_ticks(dirty)
        return self._score_pending()

    def drain_changes(self) -> tuple[list[EmployeeState], list[tuple[str, object]]]:
        """States and incidents (None = closed) changed since the last call, for a checkpoint."""
        keys = set(self.changed)
        for dirty in self._dirty.values():
            keys.update(dirty)           # touched in ticks that are still open
        states = [self.states[k] for k in keys if k in self.states]
        incidents = [(k, self.alert_book.open.get(k)) for k in self.alert_book.changed]
        self.changed, self.alert_book.changed = set(), set()
        return states, incidents

    def restore(self, states: dict[str, EmployeeState], incidents: dict | None = None,
                watermarks: dict[int, int] | None = None) -> None:
        """Adopt saved states, open incidents and stream watermarks: the pipeline then continues
        exactly as the one that saved them would have (open ticks, role cohorts included)."""
        self.states.update(states)
        for state in states.values():
            if state.dirty:
                self._dirty.setdefault(state.partition, {})[state.key] = state
            role = self._cohort_role_of(state)
            if state.cohort_cells is not None and role is not None:
                day, cells = state.cohort_cells
                self.cohorts.remember(state.partition, role, day, state.key, np.asarray(cells))
        self.alert_book.open.update(incidents or {})
        self._watermark.update(watermarks or {})

    def watermark(self, stream: int) -> int | None:
        """The latest 5-minute tick seen on a stream (saved with its checkpoint)."""
        return self._watermark.get(stream)

    def seed(self, states: dict[str, EmployeeState]) -> None:
        """Training-period states to start people from when no saved state of theirs is restored.

        Kept apart from `states` so that dropping a partition never loses a person's seed."""
        self.seeds.update(states)

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the people of partitions this instance no longer owns; return how many."""
        gone = [key for key, state in self.states.items() if state.partition in partitions]
        for key in gone:
            del self.states[key]
            self.alert_book.open.pop(key, None)
            self._elsewhere.pop(key, None)
        self.changed.difference_update(gone)
        self.alert_book.changed.difference_update(gone)
        for partition in partitions:
            self._dirty.pop(partition, None)
            self._watermark.pop(partition, None)
        return len(gone)

    def use_scoring(self, scoring: Scoring) -> None:
        """Switch to another model; people's histories carry on."""
        self.scoring = scoring
        self.alert_book.model_version = scoring.version
        self._routines, self._elsewhere = RoleRoutines(scoring.peers.common_shapes), {}

    def _state_for(self, employee: Employee | None, event: AccessEvent) -> EmployeeState:
        if employee is not None:
            key = employee.employee_id
        else:
            key = UNRESOLVED_PREFIX + (event.employee_id or event.db_user)
            self.stats.unresolved_events += 1
            self.stats.unresolved_accounts.add(event.db_user)
        state = self.states.get(key)
        if state is None:
            seed = self.seeds.get(key)
            state = EmployeeState.from_dict(seed.to_dict()) if seed is not None else \
                EmployeeState(key, employee.employee_id if employee else key[len(UNRESOLVED_PREFIX):])
            self.states[key] = state
        return state

    def _entered_new_day(self, last_tick: int, tick: int) -> bool:
        """Whether a stream moving from `last_tick` to `tick` enters a new local day with snapshots waiting.

        They are scored then, before anyone's state rolls over: a snapshot carries its day's counts and
        evidence, but scoring also reads the person's live state (the statement-shape memory behind
        `_routine_shapes_only`, the past days a sustained excess names), which must still be the
        snapshot's day."""
        if last_tick < 0 or not (self._pending or self._rule_triggers):
            return False
        try:
            local = self.refs.calendar.local
            return local(tick * TICK_MS).day != local(last_tick * TICK_MS).day
        except (OverflowError, ValueError):      # a date no calendar holds: the event itself is reported
            return False

    def _close_ticks(self, dirty: dict[str, EmployeeState]) -> None:
        self.changed.update(dirty)
        for state in dirty.values():
            snapshot = state.close_tick()
            if snapshot is not None:
                self._pending.append(snapshot)
        dirty.clear()

    # -- rules --------------------------------------------------------------

    def _own_history(self, state: EmployeeState, employee: Employee | None, event: AccessEvent, profile, local,
                     first_open: bool) -> OwnHistory:
        """What the person's own history says of this event (`OwnHistory`). The counts of reads new
        to the person are kept for people only, and not on a month's first or last working days: a
        close's queries and columns are new to everyone the first time a baseline meets one.

        A close also reads whole months of payments with their bank cards, so on those days a read
        of financial data is not judged by its size; one that also reads ID-card numbers still is
        against the person's ID-card and bank-card reads (no close needs them)."""
        if not profile.reads_personal_data or not event.success:
            return NOTHING_KNOWN              # no rule judges it: no allocation on most events
        closing = local.period and profile.reads_financial
        largest = None if closing else state.largest_read_before()
        spared = closing and not profile.reads_national_id
        largest_high_value = state.largest_high_value_read_before() if profile.high_value_columns and not spared else None
        if local.period or employee is None or employee.is_service_account:
            return OwnHistory(first_open, largest, largest_high_value)
        role_shapes = self.scoring.peers.shapes.get(employee.role, frozenset())
        return OwnHistory(first_open, largest, largest_high_value,
                          state.new_query_reading(profile, event.rows, role_shapes), state.new_high_value_reads(profile))

    def _check_rules(self, event: AccessEvent, profile, employee: Employee | None, state: EmployeeState,
                     own: OwnHistory = NOTHING_KNOWN) -> None:
        refs = references_for(state.baseline, employee, self.scoring.peers, state.day)
        hit = check_rules(event, profile, employee, refs, self.rules, self.scoring.peers.networks, own)
        if hit is None:
            return
        extra = {"trigger": {"rows": event.rows, "relations": list(profile.sensitive_relations),
                             "categories": list(profile.categories), "fingerprint_id": profile.fingerprint_id,
                             "application": event.application, "client_addr": event.client_addr}}
        self.changed.add(state.key)
        seen = state.day_evidence()
        trigger = Trigger(state.key, state.employee_id, list(seen.accounts), hit.detector, event.ts_ms, event.ts_ms,
                          event.ts_ms, 1.0, hit.severity, hit.reasons,
                          evidence(state.day_counts, seen, self.profiler.fingerprints, extra))
        self._rule_triggers.append(trigger)

    # -- the model ----------------------------------------------------------

    def _score_pending(self) -> list[dict]:
        """Score the closed ticks, then fold every trigger since the last call into incidents in event-time
        order (a rule's before the model's at the same instant). A snapshot is scored when its batch ends,
        after rules fired on later events of that batch: submitted as they came, whichever came first
        would open the incident, so its `alert_id` and `detected_at` would depend on where batches end."""
        triggers = self._rule_triggers + self._score_snapshots()
        self._rule_triggers = []
        triggers.sort(key=_event_time)      # stable: ties keep rules first, each in stream order
        alerts = [alert for alert in map(self._submit, triggers) if alert is not None]
        self._forget_idle_incidents()
        return alerts

    def _forget_idle_incidents(self) -> None:
        """Close incidents idle for twice the gap on their stream's clock. Only here, once no
        snapshot waits to be scored: a trigger still to come is then no older than the clock."""
        keys_by_stream: dict[int, list[str]] = {}
        for key in self.alert_book.open:
            state = self.states.get(key)
            if state is not None:
                keys_by_stream.setdefault(state.partition, []).append(key)
        for stream, keys in keys_by_stream.items():
            tick = self._watermark.get(stream)
            if tick is not None:
                self.alert_book.expire(tick * TICK_MS, keys)

    def _score_snapshots(self) -> list[Trigger]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        self.stats.snapshots += len(pending)
        references = [self._references(s) for s in pending]
        anomaly = self.scoring.anomaly
        if anomaly is None and not self._collect:
            return []
        roles = [self._cohort_role(s) for s in pending]
        values = horizon_values(pending)       # built once: the cells and the cohorts' memory both read them
        raw_cells = excess_cells(pending, references, values)
        memory = self.cohorts.memory_rows(pending, raw_cells, values)
        cells = judged_cells(self.cohorts.adjust(pending, roles, raw_cells, memory))
        for snapshot, role, row in zip(pending, roles, memory):
            if role is not None:     # saved with the state, so a restored partition re-learns its cohorts
                self.states[snapshot.key].cohort_cells = (snapshot.day, row.tolist())
        sustained, sustained_fired = self._sustained(pending, cells)
        matrix = feature_matrix(pending, references, cells, sustained)
        if self._collect:
            self.collected_rows.append(matrix.astype(np.float32))
            self.collected_days.extend(f"{s.key}|{s.day}" for s in pending)
        if anomaly is None:
            return []
        scores = anomaly.score(matrix)
        self.stats.snapshots_scored += int(matrix.any(axis=1).sum())
        over = scores > anomaly.threshold
        rules_fired = {SUSTAINED_EXCESS: sustained_fired, UNFAMILIAR_DATA: self._unfamiliar(matrix, pending),
                       PAGING: self._paging(matrix), OFF_HOURS_NEW_SOURCE: self._off_hours_new_source(pending),
                       OUT_OF_SCOPE: self._out_of_scope(pending)}   # in precedence order
        triggers = []
        for index in np.flatnonzero(over | np.logical_or.reduce(list(rules_fired.values()))):
            detector = "model" if over[index] else next(name for name, fired in rules_fired.items() if fired[index])
            triggers.append(self._model_trigger(pending[index], references[index], matrix[index], cells[index],
                                                float(scores[index]), detector))
        return triggers

    def _sustained(self, pending: list[Snapshot], cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each snapshot's sustained excess, advancing its person's CUSUM in stream order, and
        whether the `sustained_excess` rule fires on it: the limit reached on a day that adds to
        the sum (a run still going on, not its aftermath). Decided here, snapshot by snapshot,
        because firing restarts the sum, so later snapshots depend on it.

        Only a person's excess over their own history accumulates: someone without it is
        judged against peers, whose level says little about one person's usual, and service
        accounts are judged on sources and failures only."""
        volume = np.array([[s.day_counts[i] for i in TRACKED_INDEX] for s in pending])
        excess = np.where(volume >= MIN_DAY_ROWS, cells[:, SUSTAINED_CELLS], 0.0)
        limit = self.rules.sustained_excess
        values, fired = np.zeros(len(pending)), np.zeros(len(pending), dtype=bool)
        for i, snapshot in enumerate(pending):
            state = self.states[snapshot.key]
            if state.sustained is None:
                state.sustained = SustainedExcess.start(snapshot.day)
            if snapshot.own is None or self._cohort_role_of(state) is None:    # no own history, or not a person
                excess[i] = 0.0
            totals = state.sustained.observe(snapshot.day, excess[i])
            top = int(np.argmax(totals))
            values[i] = totals[top]
            closing = is_period_day(self.refs.calendar, snapshot.day)           # a close lifts whole teams
            needed = limit + (CAP - ALLOWANCE if closing else 0.0)
            fired[i] = (0 < limit and needed <= totals[top] and totals[top] > state.sustained.completed[top]
                        and not state.sustained.alarmed)
            if fired[i]:
                state.sustained.restart()
        return values, fired

    def _unfamiliar(self, matrix: np.ndarray, pending: list[Snapshot]) -> np.ndarray:
        """Where the `unfamiliar_personal_data` rule fires: a category of personal data read far
        beyond both the person's own usual and their peers' (a kind of data neither reads).

        A forest isolates a point by random splits over all features, so one or two extreme
        features among twenty score lower than several moderate ones; this conjunction is
        the case that must not depend on that. When the rows come from columns the person
        never read before and reads again and again today (`new_column_reads`), a lower
        excess is enough: a clerk starting to read bank cards, 25 of them. Cells are
        cohort-adjusted, and service accounts' rows are zero here (they are judged on
        sources and failures)."""
        excess = np.minimum(matrix[:, _CATEGORY_OWN], matrix[:, _CATEGORY_PEERS])
        fired = np.zeros(len(matrix), dtype=bool)
        if self.rules.unfamiliar_data > 0:
            fired |= excess >= self.rules.unfamiliar_data
        if self.rules.unfamiliar_new_columns > 0:
            fired |= (excess >= self.rules.unfamiliar_new_columns) & (matrix[:, _NEW_COLUMN_READS] >= NEW_COLUMN_READS_Z)
        for i in np.flatnonzero(fired):
            fired[i] = not self._routine_shapes_only(pending[i])
        return fired

    def _routine_shapes_only(self, snapshot: Snapshot) -> bool:
        """Whether every statement shape the person read personal data with today is one they ran on an
        earlier day, or one their role ran in training: a rare routine (a DBA's data-quality check,
        done by a colleague last month) reads a kind of data the baselines do not know, but is no
        unfamiliar data. New columns come in new shapes, so this does not hide them."""
        state = self.states[snapshot.key]
        today = snapshot.evidence.fingerprints
        if not today or len(today) >= MAX_FINGERPRINTS:
            return False
        role_shapes = self.scoring.peers.shapes.get(self._cohort_role_of(state), frozenset())
        return all(fp in role_shapes or state.scope.ran_before(fp, snapshot.day) for fp in today)

    def _paging(self, matrix: np.ndarray) -> np.ndarray:
        """Where the `personal_data_paging` rule fires: pages through personal data (OFFSET or keyset) far
        beyond the person's usual (and their peers', counted up to the person's own plus a margin):
        a script or a tool walking a table page by page. Like `_unfamiliar`, one extreme feature
        that the forest alone would score too low; from a usual of none, 3 spreads is about 7
        pages past the first. Service accounts' rows are zero here."""
        if self.rules.paging <= 0:
            return np.zeros(len(matrix), dtype=bool)
        return matrix[:, _OFFSET_PAGING] >= self.rules.paging

    def _out_of_scope(self, pending: list[Snapshot]) -> np.ndarray:
        """Where the `reads_outside_usual_scope` rule fires: today's rows read with filter values outside
        the person's usual scope (`detector.scope`) exceed their usual (95th percentile) by a share of
        a usual day's personal-data rows, and make up a quarter of today's. Slow theft dressed as
        ordinary work doubles a person's volume, which a busy day does too; but it reads other
        cities' and stations' customers, which a busy day does not (its few excursions grow with
        it, and stay a small part of the day). Judged against own history only: scope is personal."""
        share = self.rules.out_of_scope_share
        fired = np.zeros(len(pending), dtype=bool)
        if share <= 0:
            return fired
        for i, snapshot in enumerate(pending):
            own = snapshot.own
            outside = snapshot.day_counts[C.OUT_OF_SCOPE_ROWS]
            if (not self._person_with_history(snapshot) or outside < OUT_OF_SCOPE_MIN_ROWS
                    or outside < OUT_OF_SCOPE_OF_DAY * snapshot.day_counts[C.SENSITIVE_ROWS]):
                continue
            excess = outside - own.day_p95[C.OUT_OF_SCOPE_ROWS]
            fired[i] = excess >= max(OUT_OF_SCOPE_MIN_ROWS, share * own.day_p50[C.SENSITIVE_ROWS])
        return fired

    def _off_hours_new_source(self, pending: list[Snapshot]) -> np.ndarray:
        """Where the `off_hours_read_from_new_source` rule fires: today's personal-data rows read off
        hours and those read from a never-seen address or application both reach the rule's floor,
        the off-hours rows are at least `OFF_HOURS_OWN_TIMES` the person's usual of them, and most of
        today's statements fell at hours the person rarely works. A pull at night or on a holiday
        from home or a borrowed machine is a few hundred rows, which neither volume nor the forest
        (two extreme features among twenty) calls out; a night-shift dispatcher on a new terminal
        works at usual hours, and a salesman at a Sunday festival reads at usual hours of the day.
        Judged against own history only, never for service accounts."""
        floor = self.rules.off_hours_new_source_rows
        fired = np.zeros(len(pending), dtype=bool)
        if floor <= 0:
            return fired
        for i, snapshot in enumerate(pending):
            own, day = snapshot.own, snapshot.day_counts
            if not self._person_with_history(snapshot):
                continue
            off_hours = day[C.OFF_HOURS_ROWS]
            fired[i] = (min(off_hours, day[C.NEW_SOURCE_ROWS]) >= floor
                        and off_hours >= OFF_HOURS_OWN_TIMES * own.day_p95[C.OFF_HOURS_ROWS]
                        and day[C.RARE_HOUR] >= RARE_HOURS_OF_DAY * day[C.STATEMENTS])
        return fired

    def _person_with_history(self, snapshot: Snapshot) -> bool:
        """Whether the snapshot is a person's (not a service account's) with own history to judge against."""
        return snapshot.own is not None and self._cohort_role(snapshot) is not None

    def _cohort_role(self, snapshot: Snapshot) -> str | None:
        return self._cohort_role_of(self.states[snapshot.key])

    def _cohort_role_of(self, state: EmployeeState) -> str | None:
        employee = self.refs.directory.employees.get(state.employee_id)
        return None if employee is None or employee.is_service_account else employee.role

    def _references(self, snapshot: Snapshot) -> References:
        state = self.states[snapshot.key]
        employee = self.refs.directory.employees.get(state.employee_id)
        elsewhere = employee is not None and snapshot.own is not None and self._history_elsewhere(state, employee, snapshot.day)
        return references_for(snapshot.own, employee, self.scoring.peers, snapshot.day, elsewhere)

    def _history_elsewhere(self, state: EmployeeState, employee: Employee, day: int) -> bool:
        """Whether the person's history is another role's work (`detector.history_fit`), decided at their
        first scored snapshot of each day: a person's shapes do not change role within a day."""
        cached = self._elsewhere.get(state.key)
        if cached is None or cached[0] != day:
            cached = self._elsewhere[state.key] = (day, self._routines.history_from_other_role(state.scope, employee.role))
        return cached[1]

    def _model_trigger(self, snapshot: Snapshot, refs: References, row: np.ndarray, cells: np.ndarray,
                       score: float, detector: str = "model") -> Trigger:
        """A trigger from a scored snapshot: the forest's (`model`) or a rule's on the snapshot."""
        state = self.states[snapshot.key]
        threshold = self.scoring.anomaly.threshold
        if detector == "model":
            reasons = model_reasons(row, cells, snapshot, refs)
            margin = score - threshold
            severity = "critical" if margin > 0.12 else "high" if margin > 0.06 else "medium" if margin > 0.02 else "low"
        elif detector == SUSTAINED_EXCESS:
            reasons = model_reasons(row, cells, snapshot, refs, first=_SUSTAINED, history=state.history)
            severity = "high" if row[_SUSTAINED] >= 2 * self.rules.sustained_excess else "medium"
        elif detector in _COUNT_RULES:
            leading, severity = _COUNT_RULES[detector]
            reasons = [leading(snapshot)] + model_reasons(row, cells, snapshot, refs, top=2)
        else:       # a rule on the snapshot's features: the feature it fired on leads, said plainly
            first, preface = _FEATURE_RULES[detector]
            reasons = model_reasons(row, cells, snapshot, refs, first=first)
            reasons[0].detail = preface + reasons[0].detail
            severity = "high"
        horizon = reasons[0].feature.rsplit(":", 1)[1] if reasons else "day"
        window_start = {"hour": snapshot.tick_end_ms - HOUR_MS,
                        "week": self.refs.calendar.day_start_ms(snapshot.day - 6)}.get(
                            horizon, self.refs.calendar.day_start_ms(snapshot.day))
        if detector == SUSTAINED_EXCESS and state.sustained.since is not None:
            window_start = self.refs.calendar.day_start_ms(state.sustained.since)     # the whole run
        return Trigger(state.key, state.employee_id, list(snapshot.evidence.accounts), detector, snapshot.last_ts_ms,
                       window_start, snapshot.tick_end_ms, score, severity, reasons,
                       evidence(snapshot.day_counts, snapshot.evidence, self.profiler.fingerprints,
                                {"threshold": round(threshold, 4)}
                                | ({"own_history_from_other_role": True} if refs.own_from_other_role else {})))

    def _submit(self, trigger: Trigger) -> dict | None:
        alert = self.alert_book.submit(trigger)
        if alert is not None:
            self.stats.alerts[trigger.detector] += 1
        return alert


def _event_time(trigger: Trigger) -> int:
    return trigger.ts_ms
