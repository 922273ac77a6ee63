"""Per-employee behaviour state, updated incrementally on every event.

`EmployeeState` keeps counters for three horizons: the sliding last hour (12
five-minute buckets), the current local day, and the last 7 days (past active
days plus today). Past active days form the person's history, from which their
own `Baseline` is recomputed once a day, at day rollover, never per event.

At the end of each 5-minute tick in which the person was active, the state
yields a `Snapshot` for batch scoring; ticks are defined by event time so the
same events always yield the same snapshots, whatever the batch boundaries.

The state never holds statement text or literals, except the last numeric key
looked up (for sequential-enumeration detection), which stays in memory and in
the private state checkpoint, never in alerts, logs or metrics; of other values
it keeps only checksums (keyset page bounds, and 16-bit ones of the filter values
that make up a person's usual scope, `detector.scope`).
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections import deque
from dataclasses import dataclass

import numpy as np

from detector import counters as C
from detector.access import AccessProfile
from detector.baseline import MIN_OWN_DAYS, Baseline, baseline_from_days
from detector.calendar import LocalTime
from detector.events import AccessEvent
from detector.scope import ScopeMemory
from detector.sql import literal_as_int
from detector.sustained import TRACKED, SustainedExcess, day_excess

TICK_MS = 5 * 60 * 1000
HOUR_TICKS = 12
HISTORY_DAYS = 35
MAX_SEEN = 512
ROUTINE_OPEN_READS = 16     # someone who has run this many open-ended read shapes writes them as a routine
MAX_FINGERPRINTS = 64
RARE_HOUR_SHARE = 0.01
RARE_HOUR_MIN_HISTORY = 200
SEQUENTIAL_GAP = 5       # keys this close to the previous one are the next ones
MAX_STRIDE = 1000        # ... and a repeated step up to this is a walk with a stride (check digits, every 7th)
Counts = tuple[list[float], list[float], list[float]]   # the day's, the sliding hour's and the 5-minute bucket's counters
_VERSION_TOKEN = re.compile(r"v?\d+(\.\d+)*")
_PROGRAMS: dict[str, str] = {}
MAX_PROGRAMS = 4096


def client_program(application: str) -> str:
    """The program behind an application name, without window titles or versions.

    SQL clients put changing details into `application_name`: DBeaver adds the
    editor tab ("DBeaver 24.1.5 - SQLEditor <Script-12.sql>", a new number every
    day), pgAdmin the database ("pgAdmin 4 - DB:crm"), and upgrades change the
    version. A person opening a new script is not using a new tool, so sources
    are compared by program ("dbeaver", "pgadmin", "psql")."""
    found = _PROGRAMS.get(application)
    if found is None:
        head = application.split(" - ", 1)[0].lower()
        found = " ".join(t for t in head.split() if not _VERSION_TOKEN.fullmatch(t)) or head
        if len(_PROGRAMS) >= MAX_PROGRAMS:
            _PROGRAMS.clear()
        _PROGRAMS[application] = found
    return found


def lookup_key_number(literals: tuple[str, ...], index: int | None) -> int | None:
    """The number in a looked-up key: 1234 or '13800000001', and also the digits of a prefixed
    identifier such as 'ZX0007310000123456' (waybill, order and ticket numbers), so that walking
    consecutive identifiers counts as enumeration whatever their prefix."""
    number = literal_as_int(literals, index)
    if number is not None or index is None or not 0 <= index < len(literals):
        return number
    raw = literals[index]
    if not isinstance(raw, str) or len(raw) < 3 or raw[0] != "'" or raw[-1] != "'":
        return None
    text = raw[1:-1]
    digits = len(text) - len(text.rstrip("0123456789"))
    if digits < 4 or digits > 18 or not text[:-digits].isalpha():
        return None
    return int(text[-digits:])


_NETWORKS: dict[str, str] = {}
DATABASE_HOST = "(the database host)"      # a Unix socket or loopback: someone on the server itself
_LOCAL_NAMES = frozenset({"[local]", "localhost", "local", ""})


def client_network(address: str) -> str:
    """The site-level network of a client address: its IPv4 /20 or IPv6 /48 block, or a host name's domain.

    Unix-socket and loopback connections are `DATABASE_HOST`. A /20 (4,096
    addresses) is the size of a site's address plan or a VPN pool:
    a new desk or a new VPN lease stays inside the blocks the organisation
    already works from; an address from a home, a café or a foreign VPN does not."""
    found = _NETWORKS.get(address)
    if found is None:
        try:
            ip = ipaddress.ip_address(address)
            prefix = 20 if ip.version == 4 else 48
            found = DATABASE_HOST if ip.is_loopback else str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
        except ValueError:
            found = _host_name_network(address)
        if len(_NETWORKS) >= MAX_PROGRAMS:
            _NETWORKS.clear()
        _NETWORKS[address] = found
    return found


def _host_name_network(name: str) -> str:
    if name in _LOCAL_NAMES:
        return DATABASE_HOST
    return name.split(".", 1)[1] if "." in name else "(local host names)"


@dataclass(frozen=True, slots=True)
class DayEvidence:
    """What an alert shows of a person's day (relations, statement shapes, columns, sources, accounts),
    as of one moment. Copied at each tick's close, so that a snapshot scored at the end of its batch
    shows its own tick, not the later events of the batch: what an alert says, and the revisions it
    makes, then do not depend on where batches end. Shapes are kept as immutable pairs, so the copies
    are shallow."""

    relations: dict[str, float]                     # sensitive relation -> rows read today
    fingerprints: dict[str, tuple[float, float]]    # fingerprint id -> (statements, rows) today
    columns: frozenset[str]
    new_sources: int
    accounts: tuple[str, ...]


@dataclass(slots=True)
class Snapshot:
    """A person's counters at the end of a tick: one row for the model."""

    key: str
    tick_end_ms: int
    day: int
    day_counts: list[float]
    hour_counts: list[float]
    week_prior: list[float]
    week_prior_max: list[float]      # per counter, the busiest past day of those in `week_prior`
    own: Baseline | None
    last_ts_ms: int
    partition: int
    evidence: DayEvidence


class EmployeeState:
    __slots__ = (
        "key", "employee_id", "day", "day_counts", "day_hour_max", "tick", "buckets", "hour_counts",
        "history", "_baseline", "week_prior", "week_prior_max", "seen_sources", "seen_relations", "seen_columns",
        "seen_networks", "seen_open_reads", "scope",
        "hour_histogram", "day_hours", "day_new_sources", "day_relations", "day_columns", "day_new_columns",
        "day_fingerprints", "day_accounts", "last_lookup", "last_page", "dirty", "last_ts_ms", "partition", "rare_hours",
        "cohort_cells", "sustained", "suspicion", "suspect_since", "period_day", "largest_read", "day_largest_read",
        "new_query_read", "day_new_query_rows", "day_new_high_value_reads", "largest_high_value_read",
        "day_largest_high_value_read",
    )
    _DERIVED = ("_baseline", "rare_hours", "week_prior", "week_prior_max")     # recomputed from history, not persisted

    def __init__(self, key: str, employee_id: str) -> None:
        self.key = key
        self.employee_id = employee_id
        self.day = -1
        self.day_counts = C.zeros()
        self.day_hour_max = C.zeros()
        self.tick = -1
        self.buckets: deque[tuple[int, list[float]]] = deque()
        self.hour_counts = C.zeros()
        self.history: list[tuple[int, list[float], list[float]]] = []
        self._baseline: Baseline | None | object = None
        self.week_prior = C.zeros()
        self.week_prior_max = C.zeros()
        self.seen_sources: set[str] = set()
        self.seen_relations: set[str] = set()
        self.seen_open_reads: set[str] | None = set()   # fingerprint ids of open-ended personal reads run;
                                                      # None: a state saved before they were kept
        self.seen_columns: set[str] = set()
        self.seen_networks: set[str] = set()         # client networks this person worked from
        self.scope = ScopeMemory()                   # usual filter values per statement shape (checksums)
        self.largest_read: float | None = 0.0        # most personal-data rows one statement read on an earlier day;
                                                     # None: a state saved before it was kept
        self.day_largest_read = 0.0
        self.largest_high_value_read: float | None = 0.0   # the same, of statements reading ID-card or bank-card
                                                           # columns; None: a state saved before it was kept
        self.day_largest_high_value_read = 0.0
        self.new_query_read: float | None = 0.0      # most personal-data rows read in a day by statement shapes new
                                                     # that day (`new_query_reading`); None: saved before it was kept
        self.day_new_query_rows = 0.0
        self.day_new_high_value_reads = 0            # statements today reading an ID or card column first read today
        self.hour_histogram = [0] * 24
        self.day_hours = [0] * 24
        self.day_new_sources: set[str] = set()
        self.day_relations: dict[str, float] = {}
        self.day_columns: set[str] = set()
        self.day_new_columns: set[str] = set()      # personal-data columns first read today
        self.day_fingerprints: dict[str, tuple[float, float]] = {}
        self.day_accounts: set[str] = set()
        self.last_lookup: tuple[str, int, int] | None = None   # fingerprint, key, step from the key before
        self.last_page: tuple[str, int] | None = None   # fingerprint, hash of the bound of the last keyset page
        self.dirty = False
        self.last_ts_ms = 0
        self.partition = 0          # the stream (Kafka partition) this person's events arrive on
        self.cohort_cells: tuple[int, list[float]] | None = None   # (day, cells) last given to the role's cohort
        self.rare_hours: frozenset[int] = frozenset()
        self.sustained: SustainedExcess | None = None   # CUSUM of daily own excess, updated when scored
        self.suspicion: SustainedExcess | None = None   # the same sum on raw excess, folded at rollover
        self.suspect_since: int | None = None   # days from this one on stay out of the own baseline
        self.period_day = False                  # today is among the month's first or last working days

    # -- time ---------------------------------------------------------------

    def advance(self, ts_ms: int, local: LocalTime) -> Snapshot | None:
        """Move to the tick and day of `ts_ms`; return the closed tick's snapshot if it saw activity."""
        tick = ts_ms // TICK_MS
        snapshot = None
        if tick > self.tick:
            snapshot = self.close_tick()
            self._evict_hour(tick)
            self.tick = tick
        if local.day > self.day:
            self._rollover(local.day)
            self.period_day = local.period
        return snapshot

    def close_tick(self) -> Snapshot | None:
        if not self.dirty:
            return None
        self.dirty = False
        hour, peak = self.hour_counts, self.day_hour_max
        for i in range(C.N_COUNTERS):
            if hour[i] > peak[i]:
                peak[i] = hour[i]
        return Snapshot(self.key, (self.tick + 1) * TICK_MS, self.day, self.day_counts.copy(),
                        hour.copy(), self.week_prior, self.week_prior_max, self.baseline, self.last_ts_ms,
                        self.partition, self.day_evidence())

    def day_evidence(self) -> DayEvidence:
        return DayEvidence(self.day_relations.copy(), self.day_fingerprints.copy(), frozenset(self.day_columns),
                           len(self.day_new_sources), tuple(sorted(self.day_accounts)))

    def _evict_hour(self, tick: int) -> None:
        buckets, hour = self.buckets, self.hour_counts
        while buckets and buckets[0][0] <= tick - HOUR_TICKS:
            _, old = buckets.popleft()
            for i, value in enumerate(old):
                if value:
                    hour[i] -= value
        buckets.append((tick, C.zeros()))

    def _rollover(self, day: int) -> None:
        if self.largest_read is not None:
            self.largest_read = max(self.largest_read, self.day_largest_read)
        self.day_largest_read = 0.0
        if self.largest_high_value_read is not None:
            self.largest_high_value_read = max(self.largest_high_value_read, self.day_largest_high_value_read)
        self.day_largest_high_value_read = 0.0
        if self.new_query_read is not None:
            self.new_query_read = max(self.new_query_read, self.day_new_query_rows)
        self.day_new_query_rows = 0.0
        self.day_new_high_value_reads = 0
        if self.day_counts[C.STATEMENTS] > 0:
            self._track_suspicion(day)
            self.history.append((self.day, self.day_counts, self.day_hour_max))
            for h, n in enumerate(self.day_hours):
                self.hour_histogram[h] += n
        self.history = [entry for entry in self.history if entry[0] > day - HISTORY_DAYS]
        self.day = day
        self.day_counts, self.day_hour_max = C.zeros(), C.zeros()
        self.day_hours = [0] * 24
        self.day_new_sources, self.day_columns, self.day_new_columns = set(), set(), set()
        self.day_relations, self.day_fingerprints, self.day_accounts = {}, {}, set()
        self._refresh_baseline()

    def _track_suspicion(self, next_day: int) -> None:
        """Fold the completed active day's raw excess into the suspicion sum, in event order, and fix
        which days the next baselines leave out (`detector.sustained`)."""
        if self.suspicion is None:
            self.suspicion = SustainedExcess.start(self.day)
        # a month's closing and opening days lift whole teams (the cohorts judge them): never suspect
        excess = np.zeros(len(TRACKED)) if self.period_day else day_excess(self.day_counts, self.baseline)
        self.suspicion.observe(self.day, excess)
        self.suspicion.observe(next_day, np.zeros(len(TRACKED)))
        self.suspect_since = self.suspicion.suspect_since(next_day)

    def _refresh_baseline(self) -> None:
        recent = [entry for entry in self.history if entry[0] > self.day - 7]
        self.week_prior = np.sum([e[1] for e in recent], axis=0).tolist() if recent else C.zeros()
        self.week_prior_max = np.max([e[1] for e in recent], axis=0).tolist() if recent else C.zeros()
        if len(self.history) < MIN_OWN_DAYS:
            self._baseline, self.rare_hours = None, frozenset()
            return
        total = sum(self.hour_histogram)
        self.rare_hours = frozenset(h for h, n in enumerate(self.hour_histogram)
                                    if n < RARE_HOUR_SHARE * total) if total >= RARE_HOUR_MIN_HISTORY else frozenset()
        self._baseline = _STALE

    def first_open_read(self, profile: AccessProfile) -> bool:
        """Whether an open-ended read of personal data (`AccessProfile.open_ended`) has a statement
        shape this person never ran, judged only for people with days of history whose such reads
        were kept (not for states saved before they were), and who do not write such reads as a
        routine (an analyst's ad-hoc queries: `ROUTINE_OPEN_READS` shapes or more)."""
        seen = self.seen_open_reads
        return (profile.open_ended and seen is not None and len(seen) < ROUTINE_OPEN_READS
                and bool(self.history) and profile.fingerprint_id not in seen)

    def largest_read_before(self) -> float | None:
        """The most personal-data rows one statement read on an earlier day, for people with days of
        history; None when unknown (no such history, or a state saved before it was kept)."""
        return self.largest_read if self.has_history else None

    def largest_high_value_read_before(self) -> float | None:
        """The same for statements reading an ID-card or bank-card column (`HIGH_VALUE_CATEGORIES`)."""
        return self.largest_high_value_read if self.has_history else None

    def new_query_reading(self, profile: AccessProfile, rows: int | None,
                          role_shapes: frozenset[str]) -> tuple[float, float, float] | None:
        """Count a personal-data read whose statement shape is new to the person: not one they ran on an
        earlier day (as `scope` remembers it), nor one their role ran in training. Returns (today's rows
        from such statements before this one, after it, the most on any earlier day), or None when the
        read is not such a statement or the person is not judged (no days of history yet, whose first
        days make every shape new; a state saved before this was kept). Call after `observe`.

        A clerk who pulls customers for sale with a query of their own writes statements they never
        ran: a few hundred rows each, below every per-statement rule, a thousand or more in a day. People
        who write new queries every day (analysts, developers) have a large usual of such rows."""
        if self.new_query_read is None or not rows or profile.aggregate or not self.has_history:
            return None
        fp = profile.fingerprint_id
        if fp is None or fp in role_shapes or self.scope.ran_before(fp, self.day):
            return None
        before = self.day_new_query_rows
        self.day_new_query_rows = before + rows
        return before, self.day_new_query_rows, self.new_query_read

    def new_high_value_reads(self, profile: AccessProfile) -> int | None:
        """Count a statement reading an ID-card or bank-card column (`HIGH_VALUE_CATEGORIES`) that
        the person first read today, after days of history without it. Returns today's count of such
        statements, or None when this is not one. Call after `observe`, which notes today's new columns.

        An agent whose role looks up ID numbers, but who never did in weeks, reading them again and
        again today: the role's usual hides it from every peer-relative measure, the own history
        does not."""
        if not profile.high_value_columns or not self.day_new_columns:
            return None
        if not any(column in self.day_new_columns for column in profile.high_value_columns):
            return None
        self.day_new_high_value_reads += 1
        return self.day_new_high_value_reads

    @property
    def baseline(self) -> Baseline | None:
        """Percentiles of the own history, computed when first needed after a day rolls over or a
        restore (so restoring a partition of 10,000 people costs decoding, not statistics)."""
        if self._baseline is _STALE:
            trusted = self._trusted_history()
            self._baseline = baseline_from_days([e[0] for e in trusted], np.array([e[1] for e in trusted]),
                                                np.array([e[2] for e in trusted])) if trusted else None
        return self._baseline

    def _trusted_history(self) -> list[tuple[int, list[float], list[float]]]:
        """History without the days under suspicion (`detector.sustained`), unless too few would remain."""
        if self.suspect_since is None:
            return self.history
        trusted = [entry for entry in self.history if entry[0] < self.suspect_since]
        return trusted if len(trusted) >= MIN_OWN_DAYS else self.history

    @property
    def has_history(self) -> bool:
        return len(self.history) >= MIN_OWN_DAYS

    # -- events -------------------------------------------------------------

    def observe(self, event: AccessEvent, local: LocalTime, profile: AccessProfile, literals: tuple[str, ...]) -> None:
        """Count one event into the hour, the day and the person's seen sets."""
        counts = (self.day_counts, self.hour_counts, self.buckets[-1][1])
        _add(counts, C.STATEMENTS, 1.0)
        self.dirty = True
        self.last_ts_ms = event.ts_ms
        self.day_accounts.add(event.db_user)
        self.day_hours[local.hour] += 1
        if event.action == "LOGIN_FAILED":
            _add(counts, C.FAILED_LOGINS, 1.0)
        elif not event.success:
            _add(counts, C.FAILED, 1.0)
        if event.rows is not None:
            _add(counts, C.ROWS, float(event.rows))
        if not local.working:
            _add(counts, C.OFF_HOURS, 1.0)
        if local.hour in self.rare_hours:
            _add(counts, C.RARE_HOUR, 1.0)
        if event.client_addr is not None:
            network = client_network(event.client_addr)
            if network not in self.seen_networks:
                _bounded_add(self.seen_networks, network)
        new_source = self._note_sources(event, counts)
        new_column = self._note_relations(profile, counts)
        if profile.reads_personal_data and event.success:
            self._count_personal_read(event, local, profile, literals, new_source, new_column, counts)

    def _count_personal_read(self, event: AccessEvent, local: LocalTime, profile: AccessProfile,
                             literals: tuple[str, ...], new_source: bool, new_column: bool,
                             counts: Counts) -> None:
        _add(counts, C.SENSITIVE_STATEMENTS, 1.0)
        if new_column:
            _add(counts, C.NEW_COLUMN_STATEMENTS, 1.0)
        rows = None if profile.aggregate else event.rows
        if rows is None and not profile.aggregate:
            _add(counts, C.UNKNOWN_ROWS, 1.0)
        elif rows:
            value = float(rows)
            if value > self.day_largest_read:
                self.day_largest_read = value
            if profile.high_value_columns and value > self.day_largest_high_value_read:
                self.day_largest_high_value_read = value
            _add(counts, C.SENSITIVE_ROWS, value)
            for i in profile.category_counters:
                _add(counts, i, value)
            if not local.working:
                _add(counts, C.OFF_HOURS_ROWS, value)
            if new_source:
                _add(counts, C.NEW_SOURCE_ROWS, value)
            if new_column:
                _add(counts, C.NEW_COLUMN_ROWS, value)
        if profile.fingerprint_id is not None:
            outside = self.scope.judge_and_learn(profile.fingerprint_id, literals, local.day)
            if outside and rows:
                _add(counts, C.OUT_OF_SCOPE_ROWS, float(rows))
        if profile.is_export:
            _add(counts, C.SENSITIVE_EXPORTS, 1.0)
        if profile.open_ended and self.seen_open_reads is not None:
            _bounded_add(self.seen_open_reads, profile.fingerprint_id)
        if profile.unbounded:
            _add(counts, C.UNBOUNDED, 1.0)
        if profile.point_lookup:
            _add(counts, C.POINT_LOOKUPS, 1.0)
            self._note_key(profile, literals, counts)
        offset = literal_as_int(literals, profile.offset_literal_index)
        if offset:
            _add(counts, C.OFFSET_PAGES, 1.0)
        elif profile.keyset_literal_index is not None:
            self._note_keyset_page(profile, literals, counts)
        self._note_evidence(profile, rows)

    def _note_key(self, profile: AccessProfile, literals: tuple[str, ...], counts: Counts) -> None:
        key = lookup_key_number(literals, profile.key_literal_index)
        if key is None:
            return
        fingerprint = profile.fingerprint_id or ""
        last = self.last_lookup
        step = key - last[1] if last is not None and last[0] == fingerprint else 0
        if step and (abs(step) <= SEQUENTIAL_GAP or (abs(step) <= MAX_STRIDE and step == _last_step(last))):
            _add(counts, C.SEQUENTIAL_LOOKUPS, 1.0)
        self.last_lookup = (fingerprint, key, step)

    def _note_keyset_page(self, profile: AccessProfile, literals: tuple[str, ...], counts: Counts) -> None:
        """A keyset page past the first: the same statement shape again, starting from another bound.
        Only a checksum of the bound is kept, not the bound itself."""
        index = profile.keyset_literal_index
        if not 0 <= index < len(literals):
            return
        page = (profile.fingerprint_id or "", zlib.crc32(literals[index].encode("utf-8", "surrogatepass")))
        last = self.last_page
        if last is not None and last[0] == page[0] and last[1] != page[1]:
            _add(counts, C.OFFSET_PAGES, 1.0)
        self.last_page = page

    def _note_sources(self, event: AccessEvent, counts: Counts) -> bool:
        """Count never-seen client addresses and applications; True if this event uses one."""
        is_new = False
        application = event.application
        for source in (event.client_addr, None if application is None else client_program(application)):
            if source is None:
                continue
            if source in self.day_new_sources:
                is_new = True
            elif source not in self.seen_sources:
                if self.has_history:
                    self.day_new_sources.add(source)
                    _add(counts, C.NEW_SOURCES, 1.0)
                    is_new = True
                _bounded_add(self.seen_sources, source)
        return is_new

    def _note_relations(self, profile: AccessProfile, counts: Counts) -> bool:
        """Count new and distinct relations and columns; True if the statement reads a column new today."""
        for relation in profile.relations:
            if relation not in self.seen_relations:
                if self.has_history:
                    _add(counts, C.NEW_RELATIONS, 1.0)
                _bounded_add(self.seen_relations, relation)
        if not profile.reads_personal_data:
            return False
        for relation in profile.sensitive_relations:
            if relation not in self.day_relations:
                self.day_relations[relation] = 0.0
                _add(counts, C.DISTINCT_RELATIONS, 1.0)
        new_today = False
        for column in profile.sensitive_columns:
            if column not in self.day_columns:
                self.day_columns.add(column)
                _add(counts, C.DISTINCT_COLUMNS, 1.0)
            if column in self.day_new_columns:
                new_today = True
            elif column not in self.seen_columns:
                if self.has_history:
                    _add(counts, C.NEW_COLUMNS, 1.0)
                    self.day_new_columns.add(column)
                    new_today = True
                _bounded_add(self.seen_columns, column)
        return new_today

    def _note_evidence(self, profile: AccessProfile, rows: int | None) -> None:
        value = float(rows or 0)
        for relation in profile.sensitive_relations:
            self.day_relations[relation] = self.day_relations.get(relation, 0.0) + value
        fp = profile.fingerprint_id
        if fp is None:
            return
        entry = self.day_fingerprints.get(fp)
        if entry is None:
            if len(self.day_fingerprints) >= MAX_FINGERPRINTS:
                return
            entry = (0.0, 0.0)
        self.day_fingerprints[fp] = (entry[0] + 1, entry[1] + value)    # a new pair: `day_evidence` copies shallowly

    # -- persistence --------------------------------------------------------

    def to_dict(self) -> dict:
        return {name: _plain(getattr(self, name)) for name in self.__slots__ if name not in self._DERIVED}

    @classmethod
    def from_dict(cls, data: dict) -> "EmployeeState":
        state = cls(data["key"], data["employee_id"])
        for name in cls.__slots__:
            if name in data and name not in cls._DERIVED:
                setattr(state, name, _restore(name, data[name]))
        for name in _KEPT_LATER:
            if name not in data:
                setattr(state, name, None)
        if state.day >= 0:
            state._refresh_baseline()
        return state


_STALE = object()      # the baseline must be recomputed from history before use
_KEPT_LATER = ("seen_open_reads", "largest_read", "largest_high_value_read", "new_query_read")   # None: a state
                                                     # saved before it was kept, whose rules then stay silent
_SETS = {"seen_sources", "seen_relations", "seen_columns", "seen_networks", "day_new_sources", "day_columns", "day_new_columns",
         "day_accounts"}


def _plain(value: object) -> object:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, deque):
        return [list(item) for item in value]
    if isinstance(value, SustainedExcess):
        return value.to_list()
    if isinstance(value, ScopeMemory):
        return value.to_dict()
    return value


def _restore(name: str, value: object) -> object:
    if name == "seen_open_reads":
        return None if value is None else set(value)
    if name in _SETS:
        return set(value)
    if name == "buckets":
        return deque((int(t), list(c)) for t, c in value)
    if name == "history":
        return [(int(d), list(c), list(h)) for d, c, h in value]
    if name == "scope":
        return ScopeMemory.from_dict(value)
    if name in ("sustained", "suspicion"):
        return SustainedExcess.from_list(value) if value else None
    if name == "day_fingerprints":
        return {fp: tuple(pair) for fp, pair in value.items()}
    if name in ("last_lookup", "last_page", "cohort_cells"):
        return tuple(value) if value else None
    return value


def _add(counts: Counts, index: int, value: float) -> None:
    """Count into the day, the sliding hour and the current 5-minute bucket at once.

    Counts are added as they are found, rather than collected as (index, value)
    pairs and applied at the end: the hot path then builds no list per event."""
    day, hour, bucket = counts
    day[index] += value
    hour[index] += value
    bucket[index] += value


def _last_step(last: tuple) -> int:
    """The step that led to the previous key (states saved before steps were kept have none)."""
    return last[2] if len(last) > 2 else 0


def _bounded_add(seen: set[str], item: str) -> None:
    if len(seen) < MAX_SEEN:
        seen.add(item)
