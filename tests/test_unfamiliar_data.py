"""The `unfamiliar_personal_data` rule: a kind of personal data neither the person nor their peers read."""

from __future__ import annotations

import pytest

from detector.pipeline import DetectionPipeline
from detector.rules import UNFAMILIAR_DATA, RuleSettings
from tests.factories import TEST_DAY, at, event, normal_day, trained_colleagues


def _trained(limit: float, new_columns: float = 3.5) -> DetectionPipeline:
    return trained_colleagues(RuleSettings(unfamiliar_data=limit, unfamiliar_new_columns=new_columns))


def _reads(columns: str, rows: int, statements: int = 2) -> list:
    """E001's ordinary day, plus `statements` statements reading `rows` rows of `columns` from 11:00."""
    return normal_day(TEST_DAY) + [
        event(at(TEST_DAY, 11, s, 30), statement=f"SELECT {columns} FROM customers WHERE city = 'x{s}'",
              rows=rows // statements)
        for s in range(statements)]


def _alerts(pipeline: DetectionPipeline, events: list) -> list[dict]:
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_reading_national_ids_that_neither_the_person_nor_their_peers_read_alerts():
    alerts = _alerts(_trained(7.0), _reads("name, id_card_no", 600))       # 600 rows, far under bulk_read_rows
    assert [a["detector"] for a in alerts] == [UNFAMILIAR_DATA]
    alert = alerts[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "high"
    reason = alert["reasons"][0]
    assert reason["feature"].startswith("category_rows_vs_own:national_id_rows:")
    assert reason["detail"].startswith("a kind of personal data neither this person nor their peers usually read: ")
    assert "national ID" in reason["detail"] and "600" in reason["detail"]


def test_the_same_volume_of_familiar_data_does_not_fire_it():
    assert _alerts(_trained(7.0), _reads("name, phone", 600)) == []        # 15x own usual, but a usual kind


def test_a_few_rows_of_unfamiliar_data_do_not_fire_it():
    assert _alerts(_trained(7.0), _reads("name, id_card_no", 40)) == []     # under 2^7 times the usual, read twice


def test_the_rule_can_be_turned_off():
    assert _alerts(_trained(0.0, new_columns=0.0), _reads("name, id_card_no", 600)) == []


def test_a_column_first_read_today_and_read_again_and_again_fires_it_at_a_lower_volume():
    """25 bank cards in 5 statements: 2^4.7 times nobody's usual, from a column never read before."""
    alerts = _alerts(_trained(7.0), _reads("name, bank_card", 25, statements=5))
    assert [a["detector"] for a in alerts] == [UNFAMILIAR_DATA]
    assert alerts[0]["reasons"][0]["feature"].startswith("category_rows_vs_own:financial_rows:")
    assert _alerts(_trained(7.0, new_columns=0.0), _reads("name, bank_card", 25, statements=5)) == []
    assert _alerts(_trained(7.0), _reads("name, bank_card", 25, statements=1)) == []     # once is not again and again


def test_a_negative_limit_is_refused_with_its_name():
    with pytest.raises(ValueError, match="rules.unfamiliar_data"):
        RuleSettings(unfamiliar_data=-1)


QUALITY_CHECK = "SELECT id, id_card_no FROM customers WHERE length(id_card_no) <> 18"


@pytest.mark.parametrize("ran_in_training, fires", [(None, True), ("li_na", False), ("zhang_wei", False)])
def test_a_rare_routine_that_the_person_or_their_role_ran_before_does_not_fire_it(ran_in_training, fires):
    """A DBA's data-quality check reads a kind of data no baseline knows; a colleague of the same role
    ran the same statement shape last month (or the person did): a routine, not unfamiliar data."""
    def check(day: int, user: str) -> list:
        return [event(at(day, 16), user, QUALITY_CHECK, rows=20)] if day == 3 and user == ran_in_training else []
    pipeline = trained_colleagues(RuleSettings(), extra=check)
    alerts = _alerts(pipeline, normal_day(TEST_DAY) + [event(at(TEST_DAY, 11), statement=QUALITY_CHECK, rows=600)])
    assert (UNFAMILIAR_DATA in [a["detector"] for a in alerts]) is fires
    assert pipeline.scoring.peers.shapes["customer_service"]
