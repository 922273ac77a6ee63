"""A history made in another role (`detector.history_fit`): a person moved from customer service to
sales is judged against both their old work and their new peers, so ordinary sales work does not
alert for days, and reading far more than the new peers still does."""

from __future__ import annotations

from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.history_fit import MIN_USES, RoleRoutines, common_shapes
from detector.pipeline import DetectionPipeline, ReferenceData, Scoring
from detector.rules import PAGING, RuleSettings
from detector.scope import ScopeMemory, ShapeScope
from detector.training import _flat_peers, peer_baselines
from tests.factories import CATALOG, TEST_DAY, WORKDAYS, at, event, normal_day, quiet_model

DIRECTORY = """employee_id,department,role,db_accounts
E001,cs-sh,customer_service,zhang_wei
E002,cs-sh,customer_service,li_na
E010,sales-sh,sales,sun_li
E011,sales-sh,sales,zhou_min
E012,sales-sh,sales,wu_gang
"""
SALES = ("sun_li", "zhou_min")
MOVER = "wu_gang"         # listed in sales; every day of their history is customer-service lookups


def _pages(day: int, user: str, count: int, hour: int = 11) -> list:
    """A campaign list: `count` pages of 100 customers past the first."""
    return [event(at(day, hour, k // 12, 5 * (k % 12)), user, f"SELECT name, phone FROM customers ORDER BY id LIMIT 100 OFFSET {100 * k}",
                  rows=100) for k in range(1, count + 1)]


def _trained(keep_routines: bool = True) -> DetectionPipeline:
    refs = ReferenceData(Directory.parse(DIRECTORY), Catalog.from_mapping(CATALOG),
                         WorkCalendar("Asia/Shanghai", holidays=set(), workdays=set()))
    history = DetectionPipeline(refs, Scoring(peers=_flat_peers()))
    for day in WORKDAYS:
        events = [e for user in ("zhang_wei", "li_na", MOVER) for e in normal_day(day, user)]
        events += [e for user in SALES for e in _pages(day, user, 10, hour=15)]
        history.process(sorted(events, key=lambda e: e.ts_ms))
    history.finish()
    peers = peer_baselines(history.states, refs.directory)
    if not keep_routines:
        peers.common_shapes = {}
    pipeline = DetectionPipeline(refs, Scoring(peers=peers, anomaly=quiet_model()), RuleSettings())
    pipeline.restore(history.states)
    return pipeline


def _alerts(pipeline: DetectionPipeline, events: list) -> list[dict]:
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_ordinary_work_of_the_new_role_does_not_alert_a_person_whose_history_is_the_old_one():
    today = normal_day(TEST_DAY, MOVER, lookups=10) + _pages(TEST_DAY, MOVER, 8)
    assert [a["detector"] for a in _alerts(_trained(keep_routines=False), today)] == [PAGING]   # stale history alone
    assert _alerts(_trained(), today) == []


def test_reading_far_more_than_the_new_peers_still_alerts():
    alerts = _alerts(_trained(), normal_day(TEST_DAY, MOVER, lookups=10) + _pages(TEST_DAY, MOVER, 150))   # 15 times theirs
    assert [a["detector"] for a in alerts] == [PAGING] and alerts[0]["employee_id"] == "E012"
    assert alerts[0]["evidence"]["own_history_from_other_role"] is True      # the analyst is told why


def test_a_person_doing_their_own_roles_work_keeps_their_own_history():
    """A salesman who never paged is judged against himself: his colleagues' paging does not excuse it."""
    pipeline = _trained()
    routines = RoleRoutines(pipeline.scoring.peers.common_shapes)
    assert not routines.history_from_other_role(pipeline.states["E010"].scope, "sales")
    assert routines.history_from_other_role(pipeline.states["E012"].scope, "sales")


def _memory(uses: dict[str, int]) -> ScopeMemory:
    shapes = {}
    for fp, n in uses.items():
        shapes[fp] = ShapeScope(0)
        shapes[fp].uses = n
    return ScopeMemory(shapes)


def test_routine_shapes_are_those_two_members_of_a_role_ran():
    common = common_shapes([("cs", _memory({"lookup": 1, "ticket": 1})), ("cs", _memory({"lookup": 1})),
                            ("sales", _memory({"campaign": 1}))])
    assert common == {"cs": frozenset({"lookup"}), "sales": frozenset()}


def test_ad_hoc_shapes_and_short_histories_are_never_another_roles():
    routines = RoleRoutines({"cs": frozenset({"lookup"}), "developer": frozenset({"schema"})})
    judge = routines.history_from_other_role
    assert not judge(_memory({"debug-1": 300, "debug-2": 300}), "developer")    # nobody's routine
    assert not judge(_memory({"lookup": MIN_USES - 1}), "developer")            # too little to tell
    assert judge(_memory({"lookup": MIN_USES, "debug-1": 10}), "developer")
    assert not judge(_memory({"lookup": 300, "schema": 300}), "developer")      # half their own role's routine
    assert not judge(_memory({"lookup": 300}), "auditor")                       # a role training never saw
