"""Named rules for what needs no statistics: unambiguous bulk pulls, exports, and
personal data read from a network the organisation does not work from.

A rule looks at one event (with its access profile) and fires at once, so a
single-statement pull is alerted within the event's own batch. Service accounts
are exempt: their bulk traffic is their job, and the model judges them against
their own history. Each rule's name is the alert's `detector`.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector import counters as C
from detector.access import AccessProfile
from detector.alerts import Reason
from detector.directory import Employee
from detector.events import AccessEvent
from detector.features import References
from detector.state import DATABASE_HOST, client_network

BULK_READ = "bulk_sensitive_read"
SENSITIVE_EXPORT = "sensitive_export"
FOREIGN_NETWORK = "foreign_network_read"
SUSTAINED_EXCESS = "sustained_excess"     # checked on snapshots by the pipeline, not per event
UNFAMILIAR_DATA = "unfamiliar_personal_data"   # likewise
PAGING = "personal_data_paging"                # likewise
OUT_OF_SCOPE = "reads_outside_usual_scope"     # likewise
OFF_HOURS_NEW_SOURCE = "off_hours_read_from_new_source"   # likewise
OPEN_ENDED_READ = "unsized_open_ended_read"
OUTSIZED_READ = "outsized_personal_read"
OUTSIZED_MIN_ROWS = 1000      # a statement of fewer personal-data rows is never called outsized
OUTSIZED_HIGH_VALUE_MIN_ROWS = 400   # the same, judged on ID-card and bank-card reads alone
NEW_QUERY_READ = "new_query_personal_read"
NEW_QUERY_MIN_ROWS = 1000     # fewer personal-data rows a day from statements new to the person never alert
NEW_HIGH_VALUE_COLUMNS = "new_id_or_card_column_reads"


LIMITS_OFF_AT_ZERO = ("sustained_excess", "unfamiliar_data", "unfamiliar_new_columns", "paging",
                      "out_of_scope_share", "off_hours_new_source_rows", "outsized_read_times",
                      "new_query_read_times", "new_high_value_column_statements")   # >= 0; 0 = off


@dataclass(frozen=True, slots=True)
class RuleSettings:
    bulk_read_rows: int = 20000           # one statement reading at least this many personal-data rows
    bulk_read_critical_rows: int = 200000
    export_enabled: bool = True
    foreign_network_enabled: bool = True   # needs the organisation's networks, learned at training
    open_ended_read_enabled: bool = True   # an open-ended read of unknown size, of a shape new to the person
    sustained_excess: float = 2.5          # CUSUM of own daily excess that alerts (`detector.sustained`); 0 = off
    unfamiliar_data: float = 7.0           # excess over own AND peers' usual of a personal-data category; 0 = off
    unfamiliar_new_columns: float = 3.5    # the same, lower, when it comes from columns first read today; 0 = off
    paging: float = 3.0                    # excess of pages (OFFSET or keyset) through personal data over the usual; 0 = off
    out_of_scope_share: float = 0.5        # rows outside the usual scope above own usual, as a share of a usual day; 0 = off
    off_hours_new_source_rows: int = 200   # personal-data rows read off hours from a never-seen source, at rare hours; 0 = off
    outsized_read_times: float = 3.0       # one statement reading this many times the most one ever read before; 0 = off
    new_query_read_times: float = 3.0      # rows a day from statement shapes new to the person, over the most before; 0 = off
    new_high_value_column_statements: int = 20   # statements a day reading an ID or card column new to the person; 0 = off

    def __post_init__(self) -> None:
        for name in LIMITS_OFF_AT_ZERO:
            if getattr(self, name) < 0:
                raise ValueError(f"rules.{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        if self.bulk_read_rows < 1:
            raise ValueError(f"rules.bulk_read_rows must be >= 1, got {self.bulk_read_rows}")


@dataclass(frozen=True, slots=True)
class RuleHit:
    detector: str
    severity: str
    reasons: list[Reason]


@dataclass(frozen=True, slots=True)
class OwnHistory:
    """What the person's own history says of this event, from `EmployeeState` before and after it
    was observed; each field's default means "nothing to judge".

    `first_open_read`: the statement is an open-ended read of a shape the person never ran
    (`EmployeeState.first_open_read`); when the source does not report its rows (MariaDB's
    audit log never does) nothing else can tell a 600,000-row pull from a usual one.
    `largest_before`: the most personal-data rows one statement of the person's read on an
    earlier day (`EmployeeState.largest_read_before`).
    `largest_high_value_before`: the same, of statements reading an ID-card or bank-card column
    (`EmployeeState.largest_high_value_read_before`).
    `new_query`: today's personal-data rows from statement shapes new to the person, before and
    after this event, and the most on an earlier day (`EmployeeState.new_query_reading`).
    `new_high_value_reads`: today's statements reading an ID-card or bank-card column the person
    first read today, this one included (`EmployeeState.new_high_value_reads`)."""
    first_open_read: bool = False
    largest_before: float | None = None
    largest_high_value_before: float | None = None
    new_query: tuple[float, float, float] | None = None
    new_high_value_reads: int | None = None


NOTHING_KNOWN = OwnHistory()


def may_fire(event: AccessEvent, profile: AccessProfile, settings: RuleSettings,
             networks: frozenset[str] | None = None, own: OwnHistory = NOTHING_KNOWN) -> bool:
    """Cheap pre-check on the hot path, before references are looked up."""
    return profile.reads_personal_data and (
        (profile.is_export and settings.export_enabled) or (event.rows or 0) >= settings.bulk_read_rows
        or _foreign(event, settings, networks) is not None or _unsized_first(event, settings, own.first_open_read)
        or _outsized(event, profile, settings, own.largest_before)
        or _outsized_high_value(event, profile, settings, own.largest_high_value_before)
        or _new_queries(settings, own.new_query)
        or _new_high_value(settings, own.new_high_value_reads))


def check_rules(event: AccessEvent, profile: AccessProfile, employee: Employee | None,
                refs: References, settings: RuleSettings, networks: frozenset[str] | None = None,
                own: OwnHistory = NOTHING_KNOWN) -> RuleHit | None:
    """The first rule this event breaks, or None.

    `networks` are the client networks the organisation worked from in training
    (None: unknown, and the foreign-network rule stays silent). The database host itself (a
    Unix socket, loopback) is never foreign: it is where administrators work. The rules on the
    person's own history (`own`) judge people only, never an account no one owns."""
    if not profile.reads_personal_data or not event.success:
        return None
    if employee is not None and employee.is_service_account:
        return None
    if profile.is_export and settings.export_enabled:
        return _export_hit(event, profile)
    if event.rows is not None and event.rows >= settings.bulk_read_rows and not profile.aggregate:
        return _bulk_hit(event, profile, refs, settings)
    network = _foreign(event, settings, networks)
    if network is not None:
        return _foreign_hit(event, profile, network)
    if employee is None:
        return None
    if _unsized_first(event, settings, own.first_open_read):
        return _open_ended_hit(event, profile)
    if _outsized(event, profile, settings, own.largest_before):
        return _outsized_hit(event, profile, own.largest_before or 0.0)
    if _outsized_high_value(event, profile, settings, own.largest_high_value_before):
        return _outsized_high_value_hit(event, profile, own.largest_high_value_before or 0.0)
    if own.new_query is not None and _new_queries(settings, own.new_query):
        return _new_query_hit(event, profile, own.new_query)
    if _new_high_value(settings, own.new_high_value_reads):
        return _new_high_value_hit(profile, own.new_high_value_reads or 0)
    return None


def _unsized_first(event: AccessEvent, settings: RuleSettings, first_open_read: bool) -> bool:
    return first_open_read and settings.open_ended_read_enabled and event.rows is None and event.success


def _outsized(event: AccessEvent, profile: AccessProfile, settings: RuleSettings, largest_before: float | None,
              floor: int = OUTSIZED_MIN_ROWS) -> bool:
    """One statement reading `outsized_read_times` the most personal-data rows the person ever read in one."""
    times = settings.outsized_read_times
    return (largest_before is not None and times > 0 and event.rows is not None and not profile.aggregate
            and event.rows >= max(floor, times * largest_before))


def _outsized_high_value(event: AccessEvent, profile: AccessProfile, settings: RuleSettings,
                         largest_before: float | None) -> bool:
    """The same on ID-card and bank-card numbers alone, from a lower floor: what gangs pay most for is
    sold by the hundred, and a person's largest such read is smaller than their largest read of names
    and phones (a sales list of 500 customers is routine, 500 customers' ID-card numbers are not)."""
    return bool(profile.high_value_columns) and _outsized(event, profile, settings, largest_before,
                                                           OUTSIZED_HIGH_VALUE_MIN_ROWS)


def _new_queries(settings: RuleSettings, new_query: tuple[float, float, float] | None) -> bool:
    """Today's rows from statements new to the person cross `new_query_read_times` the most of an
    earlier day (and `NEW_QUERY_MIN_ROWS`) with this event: once a day, not on every statement after."""
    times = settings.new_query_read_times
    if new_query is None or times <= 0:
        return False
    before, after, most = new_query
    needed = max(NEW_QUERY_MIN_ROWS, times * most)
    return before < needed <= after


def _new_high_value(settings: RuleSettings, reads: int | None) -> bool:
    """Today's statements reading an ID or card column new to the person reach the limit with this
    one: once a day."""
    limit = settings.new_high_value_column_statements
    return limit > 0 and reads == limit


def _foreign(event: AccessEvent, settings: RuleSettings, networks: frozenset[str] | None) -> str | None:
    """The event's client network when the organisation never worked from it, else None."""
    if networks is None or not settings.foreign_network_enabled or event.client_addr is None:
        return None
    network = client_network(event.client_addr)
    return None if network in networks or network == DATABASE_HOST else network


def _bulk_hit(event: AccessEvent, profile: AccessProfile, refs: References, settings: RuleSettings) -> RuleHit:
    rows = event.rows or 0
    own, peer = refs.own.day_p95[C.SENSITIVE_ROWS], refs.peers.day_p95[C.SENSITIVE_ROWS]
    detail = (f"one statement read {rows:,} rows of {_relations(profile)} with {_columns(profile)}; "
              f"own 95th percentile {own:,.0f} such rows a day; peers' {peer:,.0f}")
    severity = "critical" if rows >= settings.bulk_read_critical_rows else "high"
    return RuleHit(BULK_READ, severity, [Reason("statement_sensitive_rows", rows, own, detail)])


def _export_hit(event: AccessEvent, profile: AccessProfile) -> RuleHit:
    detail = (f"exported {_row_count(event)} rows of {_relations(profile)} ({_columns(profile)})"
              f"{_with_application(event)}")
    return RuleHit(SENSITIVE_EXPORT, "high", [Reason("sensitive_export", 1, 0, detail)])


def _foreign_hit(event: AccessEvent, profile: AccessProfile, network: str) -> RuleHit:
    detail = (f"read {_row_count(event)} rows of {_relations(profile)} ({_columns(profile)}) from {event.client_addr}"
              f"{_with_application(event)}; "
              f"nobody in the organisation worked from its network {network} during training")
    return RuleHit(FOREIGN_NETWORK, "high", [Reason("foreign_network", 1, 0, detail)])


def _open_ended_hit(event: AccessEvent, profile: AccessProfile) -> RuleHit:
    detail = (f"ran a statement never run before reading {_relations(profile)} ({_columns(profile)})"
              f"{_with_application(event)}, "
              f"with no LIMIT and no key, and its source does not report rows: it may have read the whole "
              f"table (statement {profile.fingerprint_id})")
    return RuleHit(OPEN_ENDED_READ, "medium", [Reason("open_ended_read", 1, 0, detail)])


def _outsized_hit(event: AccessEvent, profile: AccessProfile, largest_before: float) -> RuleHit:
    detail = (f"{_one_statement(event, profile)}; "
              f"the most this person read in one statement on any earlier day: {largest_before:,.0f}")
    return RuleHit(OUTSIZED_READ, "high", [Reason("statement_vs_own_largest", event.rows or 0, largest_before, detail)])


def _outsized_high_value_hit(event: AccessEvent, profile: AccessProfile, largest_before: float) -> RuleHit:
    detail = (f"{_one_statement(event, profile)}, with {', '.join(profile.high_value_columns)}; the most rows with "
              f"ID-card or bank-card numbers this person read in one statement on any earlier day: {largest_before:,.0f}")
    return RuleHit(OUTSIZED_READ, "high",
                   [Reason("statement_high_value_vs_own_largest", event.rows or 0, largest_before, detail)])


def _one_statement(event: AccessEvent, profile: AccessProfile) -> str:
    return (f"one statement read {event.rows:,} rows of {_relations(profile)} ({_columns(profile)})"
            f"{_with_application(event)}")


def _row_count(event: AccessEvent) -> str:
    return "an unknown number of" if event.rows is None else f"{event.rows:,}"


def _with_application(event: AccessEvent) -> str:
    return f" with {event.application}" if event.application else ""


def _new_query_hit(event: AccessEvent, profile: AccessProfile, new_query: tuple[float, float, float]) -> RuleHit:
    _, today, most = new_query
    detail = (f"statements this person never ran before read {today:,.0f} personal-data rows today (the latest: "
              f"{event.rows:,} rows of {_relations(profile)} ({_columns(profile)})); the most such statements read "
              f"on any earlier day: {most:,.0f}")
    return RuleHit(NEW_QUERY_READ, "medium", [Reason("new_query_rows_vs_own_most", today, most, detail)])


def _new_high_value_hit(profile: AccessProfile, reads: int) -> RuleHit:
    detail = (f"{reads} statements today read ID-card or bank-card columns this person never read before "
              f"(the latest: {', '.join(profile.high_value_columns)}); on every earlier day: none")
    return RuleHit(NEW_HIGH_VALUE_COLUMNS, "medium", [Reason("new_high_value_column_statements", reads, 0, detail)])


def _relations(profile: AccessProfile) -> str:
    return ", ".join(profile.sensitive_relations)


def _columns(profile: AccessProfile) -> str:
    columns = [c.rsplit(".", 1)[1] for c in profile.sensitive_columns]
    return ", ".join(dict.fromkeys(columns))
