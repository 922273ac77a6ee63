"""The behaviour signals behind detection quality: what counts as new, foreign, sustained or shared."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from detector import counters as C
from detector.baseline import weekly_sums
from detector.calendar import WorkCalendar
from detector.features import (
    FEATURE_NAMES, HORIZONS, REFERENCES, CohortLevels, References, column_median, feature_matrix, is_period_day,
    judged_cells,
)
from detector.model import ForestSettings, fit_model
from detector.pipeline import DetectionPipeline, Scoring
from detector.rules import FOREIGN_NETWORK
from detector.state import DATABASE_HOST, EmployeeState, Snapshot, client_network, client_program, lookup_key_number
from detector.training import _flat_peers, peer_baselines
from tests.factories import at, event, lookup, reference_data

N_CELLS = len(REFERENCES) * len(HORIZONS) * C.N_COUNTERS


def _history_pipeline(days=range(1, 11), **fields) -> DetectionPipeline:
    """Ten days of ordinary lookups by E001 (weekends off), every event with `fields`."""
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    events = [lookup(at(d, 9 + i // 5, (i % 5) * 11), 1000 + (i * 7919) % 5000, **fields)
              for d in days if d not in (5, 6) for i in range(40)]
    pipeline.process(events)
    return pipeline


def _cell(counter: str, horizon: str, reference: str) -> int:
    return (REFERENCES.index(reference) * len(HORIZONS) + HORIZONS.index(horizon)) * C.N_COUNTERS + C.INDEX[counter]


# -- sources and networks -----------------------------------------------------

def test_a_new_editor_tab_or_client_version_is_not_a_new_program():
    assert client_program("DBeaver 24.1.5 - SQLEditor <Script-59.sql>") == client_program("DBeaver 23.3.5 - SQLEditor <Script-3.sql>")
    assert client_program("pgAdmin 4 - DB:crm") == "pgadmin"
    assert client_program("DataGrip 2024.2.3") == "datagrip"
    assert client_program("python3") == "python3" and client_program("psql") != client_program("mysql")


def test_new_sql_editor_tab_does_not_count_as_a_new_source():
    pipeline = _history_pipeline(application="DBeaver 24.1.5 - SQLEditor <Script-1.sql>")
    pipeline.process([lookup(at(11, 10), 4242, application="DBeaver 24.1.5 - SQLEditor <Script-11.sql>")])
    assert pipeline.states["E001"].day_counts[C.NEW_SOURCES] == 0


def test_client_networks_are_site_sized_blocks():
    assert client_network("172.20.5.9") == client_network("172.20.14.200") == "172.20.0.0/20"
    assert client_network("172.20.21.3") != client_network("172.20.5.9")
    assert client_network("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert client_network("laptop-7.corp.example") == "corp.example"


def test_personal_data_read_from_a_network_the_organisation_never_used_raises_an_alert():
    training = _history_pipeline(client_addr="10.12.3.40")
    peers = peer_baselines(training.states, training.refs.directory)
    assert peers.networks == frozenset({"10.12.0.0/20"})
    pipeline = DetectionPipeline(training.refs, Scoring(peers=peers))
    pipeline.restore(training.states)
    inside = pipeline.process([lookup(at(11, 10), 1, client_addr="10.12.9.7")])      # a new desk, same site
    outside = pipeline.process([lookup(at(11, 22), 987654, client_addr="10.99.77.86"),
                                lookup(at(11, 22, 1), 987650, client_addr="10.99.77.86")])
    assert inside == []
    assert [a["detector"] for a in outside] == [FOREIGN_NETWORK]
    assert "10.99.64.0/20" in outside[0]["reasons"][0]["detail"]
    assert "98765" not in str(outside[0])                 # no statement literal in the alert


def test_foreign_network_rule_is_silent_without_learned_networks_and_for_service_accounts():
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    assert pipeline.process([lookup(at(1, 10), 1, client_addr="10.99.1.1")]) == []
    peers = _flat_peers()
    peers.networks = frozenset({"10.12.0.0/20"})
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=peers))
    assert pipeline.process([event(at(1, 2), "svc_billing", "SELECT name FROM customers WHERE id = 1",
                                   client_addr="10.99.1.1")]) == []


# -- new columns and enumeration ------------------------------------------------

def test_every_statement_reading_a_column_first_read_today_is_counted():
    pipeline = _history_pipeline()
    reads = [event(at(11, 10, m), statement=f"SELECT name, id_card_no FROM customers WHERE id = {500 + m * 7}")
             for m in range(6)]
    pipeline.process(reads + [lookup(at(11, 11), 77)])
    day = pipeline.states["E001"].day_counts
    assert day[C.NEW_COLUMNS] == 1
    assert day[C.NEW_COLUMN_STATEMENTS] == 6 and day[C.NEW_COLUMN_ROWS] == 6


def test_walking_prefixed_identifiers_counts_as_enumeration():
    assert lookup_key_number(("'ZX0007310000123456'",), 0) == 7310000123456
    assert lookup_key_number(("'A-1'",), 0) is None and lookup_key_number(("'hello'",), 0) is None
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    walk = [event(at(1, 10, s // 60, s % 60), statement=f"SELECT name, phone FROM customers WHERE id = 'ZX{1000 + s:013d}'")
            for s in range(20)]
    pipeline.process(walk)
    assert pipeline.states["E001"].day_counts[C.SEQUENTIAL_LOOKUPS] == 19


@pytest.mark.parametrize("step, counted", [(7, 18), (-40, 18), (1001, 0)])
def test_walking_keys_with_a_fixed_stride_counts_from_the_second_step(step: int, counted: int):
    """Waybill numbers with a check digit, or every 7th customer: a repeated step is a walk too;
    the first step of a stride beyond SEQUENTIAL_GAP cannot tell, the second can."""
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    walk = [lookup(at(1, 10, s // 60, s % 60), 500_000 + s * step) for s in range(20)]
    pipeline.process(walk)
    assert pipeline.states["E001"].day_counts[C.SEQUENTIAL_LOOKUPS] == counted


def test_scattered_lookups_with_changing_steps_are_not_a_walk():
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    keys = [1000, 1040, 1077, 1180, 1190, 1330, 1335 + 900, 3000]      # steps 40, 37, 103, 10, 140, 905, 765
    pipeline.process([lookup(at(1, 10, i), key) for i, key in enumerate(keys)])
    assert pipeline.states["E001"].day_counts[C.SEQUENTIAL_LOOKUPS] == 0


def test_a_lookup_state_saved_without_its_step_still_restores_and_counts():
    first = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    first.process([lookup(at(1, 10, 0), 1000)])
    saved = first.states["E001"].to_dict()
    saved["last_lookup"] = saved["last_lookup"][:2]                 # as states were saved before steps were kept
    later = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()))
    later.restore({"E001": EmployeeState.from_dict(saved)})
    later.process([lookup(at(1, 10, 1), 1001)])
    assert later.states["E001"].day_counts[C.SEQUENTIAL_LOOKUPS] == 1
    assert later.states["E001"].last_lookup[1:] == (1001, 1)


# -- horizons -------------------------------------------------------------------

def test_weekly_levels_leave_out_the_busiest_day():
    days = [1, 2, 3, 4]
    counts = np.zeros((4, C.N_COUNTERS))
    counts[:, C.SENSITIVE_ROWS] = [10, 1000, 10, 10]
    sums = weekly_sums(days, counts)[:, C.SENSITIVE_ROWS]
    assert list(sums) == [0, 10, 20, 30]


def test_a_one_day_burst_does_not_echo_through_the_following_week():
    cells = np.zeros((1, N_CELLS))
    cells[0, _cell("sequential_key_lookups", "week", "own")] = 9.0    # last week's enumeration
    cells[0, _cell("sequential_key_lookups", "day", "own")] = 0.0     # nothing today
    cells[0, _cell("sensitive_rows", "day", "peers")] = 6.0            # above peers ...
    cells[0, _cell("sensitive_rows", "day", "own")] = 0.5              # ... as always for this person
    judged = judged_cells(cells)
    assert judged[0, _cell("sequential_key_lookups", "week", "own")] == 1.0
    assert judged[0, _cell("sensitive_rows", "day", "peers")] == 1.5


# -- cohorts ----------------------------------------------------------------------

def _snapshot(key: str, day: int, rows: float, tick: int = 0) -> Snapshot:
    counts = C.zeros()
    counts[C.SENSITIVE_ROWS] = rows
    return Snapshot(key, 1_000_000 + tick, day, counts, counts, C.zeros(), C.zeros(), None, 0, 0,
                    EmployeeState(key, key).day_evidence())


def _surge_cells(z: float) -> np.ndarray:
    row = np.zeros(N_CELLS)
    for horizon in HORIZONS:
        row[_cell("sensitive_rows", horizon, "own")] = z
    return row


def test_month_end_pull_shared_by_a_colleague_is_judged_against_the_colleague():
    calendar = WorkCalendar("Asia/Shanghai")
    month_end = date(2026, 9, 30).toordinal()
    assert is_period_day(calendar, month_end) and not is_period_day(calendar, date(2026, 9, 15).toordinal())
    cohort = CohortLevels(calendar=calendar)
    snaps = [_snapshot("E1", month_end, 76_000), _snapshot("E2", month_end, 66_000)]
    adjusted = cohort.adjust(snaps, ["finance", "finance"], np.stack([_surge_cells(16.0), _surge_cells(8.7)]))
    assert adjusted[0, _cell("sensitive_rows", "day", "own")] < 0.5
    assert adjusted[1, _cell("sensitive_rows", "hour", "own")] == 0.0


def test_one_colleagues_busy_day_does_not_hide_a_theft_on_an_ordinary_day():
    cohort = CohortLevels(calendar=WorkCalendar("Asia/Shanghai"))
    day = date(2026, 9, 15).toordinal()
    snaps = [_snapshot("E1", day, 5_000), _snapshot("E2", day, 90_000)]
    adjusted = cohort.adjust(snaps, ["developer", "developer"], np.stack([_surge_cells(9.0), _surge_cells(12.0)]))
    assert adjusted[0, _cell("sensitive_rows", "day", "own")] == 9.0


def test_cohort_memory_survives_a_restore():
    cohort = CohortLevels()
    snaps = [_snapshot("E1", 740_000, 10)]
    memory = cohort.memory_rows(snaps, np.zeros((1, N_CELLS)))
    other = CohortLevels()
    other.remember(0, "finance", 740_000, "E1", memory[0])
    other.remember(0, "finance", 740_000, "E2", np.zeros(N_CELLS))       # an older layout: ignored
    assert list(other._latest[(0, "finance", 740_000)]) == ["E1"]


# -- features and scores ------------------------------------------------------------

def test_service_accounts_are_judged_on_new_sources_and_failures_only():
    pipeline = _history_pipeline()
    state: EmployeeState = pipeline.states["E001"]
    snaps = [_snapshot("E001", 740_000, 10)] * 2
    cells = np.full((2, N_CELLS), 5.0)
    baseline = state.baseline
    refs = [References(baseline, baseline, False, service=False), References(baseline, baseline, False, service=True)]
    matrix = feature_matrix(snaps, refs, cells)
    kept = [FEATURE_NAMES.index("new_sources"), FEATURE_NAMES.index("failures")]
    assert (matrix[0] > 0).sum() > len(kept)
    assert set(np.flatnonzero(matrix[1])) == set(kept)


def test_an_extreme_in_one_sparse_feature_scores_above_the_threshold():
    rng = np.random.default_rng(0)
    matrix = np.abs(rng.normal(0, 0.6, (3000, len(FEATURE_NAMES))))
    seq = FEATURE_NAMES.index("sequential_lookups")
    matrix[:, seq] = np.where(rng.random(3000) < 0.01, rng.uniform(0, 1.6, 3000), 0.0)
    model = fit_model(matrix, np.array([f"p{i % 300}|{i // 300}" for i in range(3000)]), ForestSettings(n_estimators=50))
    row = np.zeros((1, len(FEATURE_NAMES)))
    row[0, seq] = 7.5                                       # 200 consecutive lookups, never seen in training
    assert model.score(row)[0] > model.threshold


def test_column_median_equals_numpy_median_bit_for_bit():
    rng = np.random.default_rng(7)
    for members in (1, 2, 5, 6, 31, 40):
        rows = rng.normal(0, 3, (members, 12)) * rng.integers(0, 2, (members, 12))
        assert np.array_equal(column_median(rows), np.median(rows, axis=0))
    rows = rng.normal(0, 1, (6, 4))
    rows[2, 1] = np.nan
    assert np.array_equal(column_median(rows), np.median(rows, axis=0), equal_nan=True)


def test_the_database_host_itself_is_never_a_foreign_network():
    assert client_network("[local]") == client_network("127.0.0.1") == client_network("::1") == DATABASE_HOST
    peers = _flat_peers()
    peers.networks = frozenset({"10.12.0.0/20"})
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=peers))
    assert pipeline.process([lookup(at(1, 10), 1, client_addr="[local]")]) == []
    assert [a["detector"] for a in pipeline.process([lookup(at(1, 11), 2, client_addr="10.99.0.1")])] == [FOREIGN_NETWORK]
