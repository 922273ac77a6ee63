"""Sustained excess (CUSUM over days): slow theft accumulates, one busy day does not."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from detector.features import FEATURE_NAMES
from detector.rules import SUSTAINED_EXCESS, RuleSettings
from detector.pipeline import DetectionPipeline, Scoring
from detector.state import EmployeeState
from detector.sustained import ALLOWANCE, CAP, TRACKED, SustainedExcess
from detector.training import _flat_peers
from tests.factories import SHANGHAI, lookup, quiet_model, reference_data

SUSTAINED = FEATURE_NAMES.index("sustained_excess")
HISTORY = [(d, 40) for d in range(1, 36) if d % 7 not in (6, 0)]       # five weeks of 40 lookups a workday


def _at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 8, 3, hour, minute, tzinfo=SHANGHAI) + timedelta(days=day - 1)   # day 1 is a Monday


def _day(day: int, lookups: int):
    return [lookup(_at(day, 9 + i * 8 // lookups, (i * 7) % 60), 1000 + (i * 7919) % 5000) for i in range(lookups)]


def _sustained_by_day(days: list[tuple[int, int]], batches_per_day: int = 1) -> tuple[dict[int, float], DetectionPipeline]:
    """Each day's last sustained-excess value for E001 doing `lookups` single-row reads on `day`."""
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()), RuleSettings(sustained_excess=0),
                                 collect_snapshots=True)     # the rule off: its alarms restart the sum
    values = {}
    for day, lookups in days:
        events = _day(day, lookups)
        step = -(-len(events) // batches_per_day)
        for start in range(0, len(events), step):
            pipeline.process(events[start:start + step])
        pipeline.finish()
        values[day] = float(np.vstack(pipeline.collected_rows)[-1, SUSTAINED])
    return values, pipeline


def test_reading_well_above_own_usual_day_after_day_accumulates():
    values, _ = _sustained_by_day(HISTORY + [(d, 100) for d in (36, 37, 38, 39, 40)])
    assert values[35 - 2] == 0.0                      # an ordinary history leaves nothing
    slow = [values[d] for d in (36, 37, 38, 39, 40)]
    assert all(later > earlier for earlier, later in zip(slow, slow[1:]))
    assert slow[0] < CAP - ALLOWANCE < slow[2]        # by the third day, more than any single day can give


def test_one_busy_day_never_exceeds_what_a_single_day_can_give_and_then_fades():
    values, _ = _sustained_by_day(HISTORY + [(36, 400), (37, 40), (38, 40), (39, 40)])
    assert values[36] == pytest.approx(CAP - ALLOWANCE)
    assert values[36] > values[37] > values[38] > values[39] == 0.0


def test_days_off_neither_reset_nor_add():
    values, _ = _sustained_by_day(HISTORY + [(39, 100), (40, 100), (43, 100)])   # Thu, Fri, then Monday
    assert values[39] < values[40] < values[43]
    assert values[43] > CAP - ALLOWANCE


def test_sustained_excess_does_not_depend_on_batch_boundaries_and_survives_a_restore():
    days = HISTORY + [(36, 100), (37, 100)]
    whole, pipeline = _sustained_by_day(days)
    split, split_pipeline = _sustained_by_day(days, batches_per_day=7)
    assert whole == split
    state = pipeline.states["E001"]
    assert state.suspect_since == date(2026, 9, 7).toordinal()     # day 36: the run stays out of own baselines
    assert state.to_dict() == split_pipeline.states["E001"].to_dict()
    restored = EmployeeState.from_dict(state.to_dict())
    assert restored.sustained.day == state.sustained.day
    assert np.array_equal(restored.sustained.completed, state.sustained.completed)
    assert np.array_equal(restored.sustained.today, state.sustained.today)


def test_a_saved_cusum_of_other_counters_starts_afresh():
    assert SustainedExcess.from_list([5, [1.0], [2.0], None]) is None
    kept = SustainedExcess.from_list([5, [1.0] * len(TRACKED), [0.5] * len(TRACKED), 3])
    assert kept is not None and kept.day == 5 and kept.since == 3


@pytest.mark.parametrize("limit, alerted_day", [(2.5, 39), (0.0, None)])
def test_the_sustained_excess_rule_alerts_once_the_cusum_reaches_its_limit(limit, alerted_day):
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers(), anomaly=quiet_model()),
                                 RuleSettings(sustained_excess=limit))
    first_day, first_alert = {}, {}
    for day, lookups in HISTORY + [(d, 100) for d in (36, 37, 38, 39, 40)]:
        alerts = pipeline.process(_day(day, lookups)) + pipeline.finish()
        for alert in alerts:
            first_day.setdefault(alert["detector"], day)
            first_alert.setdefault(alert["detector"], alert)
    if alerted_day is None:
        assert SUSTAINED_EXCESS not in first_day
        return
    assert first_day[SUSTAINED_EXCESS] == alerted_day
    assert pipeline.states["E001"].sustained.completed.max() < CAP - ALLOWANCE    # restarted after the alarm
    alert = first_alert[SUSTAINED_EXCESS]
    assert "day after day" in alert["reasons"][0]["detail"]
    assert "previous active days: 40, 100, 100, 100" in alert["reasons"][0]["detail"]   # days 35 to 38
    assert alert["window_start"] == "2026-09-06T16:00:00.000Z"           # from the run's first day (Sept 7)


def _sustained_alert_days(days: list[tuple[int, int]], one_batch: bool = False) -> list[int]:
    """The days the rule alerts on, each day processed on its own or (`one_batch`) all in one batch."""
    pipeline = DetectionPipeline(reference_data(), Scoring(peers=_flat_peers(), anomaly=quiet_model()),
                                 RuleSettings(sustained_excess=2.5))
    batches = [[e for day, lookups in days for e in _day(day, lookups)]] if one_batch else \
        [_day(day, lookups) for day, lookups in days]
    alerts = [a for batch in batches for a in pipeline.process(batch) + pipeline.finish()]
    first = date(2026, 8, 3).toordinal() - 1                            # day 1 is 3 Aug 2026
    return [datetime.fromisoformat(a["detected_at"]).astimezone(SHANGHAI).date().toordinal() - first
            for a in alerts if a["detector"] == SUSTAINED_EXCESS]


def test_a_run_alerts_once_however_long_it_lasts_and_a_new_run_after_a_usual_day_alerts_again():
    """Two weeks at 2.5x the usual: one alarm (day 39), not one every day or two after it. A usual
    day (44) ends the run; the next run is reported in its turn."""
    long_run = [(d, 100) for d in (36, 37, 38, 39, 40, 43, 44, 45, 46, 47)]
    assert _sustained_alert_days(HISTORY + long_run) == [39]
    broken = [(d, 100) for d in (36, 37, 38, 39, 40, 43)] + [(44, 40)] + [(d, 100) for d in (45, 46, 47, 50, 51)]
    later = _sustained_alert_days(HISTORY + broken)
    assert later[0] == 39 and len(later) == 2 and later[1] > 44


def test_a_cusum_saved_before_alarms_were_remembered_restores_without_one():
    old = SustainedExcess.from_list([5, [1.0] * len(TRACKED), [0.5] * len(TRACKED), 3])
    assert old is not None and old.muted is None and old.alarmed is False
    saved = SustainedExcess.from_list([5, [1.0] * len(TRACKED), [0.5] * len(TRACKED), 3, 5, True])
    assert saved.muted == 5 and saved.alarmed is True
    assert SustainedExcess.from_list(saved.to_list()).to_list() == saved.to_list()



def test_on_a_months_first_and_last_working_days_the_rule_needs_one_more_busy_days_worth():
    """A month's close lifts whole teams day after day, so there the sum must reach the limit plus
    what one busy day can add. The same run that alarms on its 4th day mid-month alarms on its 6th
    across the close (28 Sept to 2 Oct are period days), while it still goes on."""
    usual = [(d, 40) for d in range(1, 53) if d % 7 not in (6, 0)]         # to Wed 23 Sept (day 52)
    mid_month = [(d, 100) for d in (36, 37, 38, 39, 40, 43)]              # Mon 7 to Mon 14 Sept
    month_end = [(d, 100) for d in (53, 54, 57, 58, 59, 60)]              # Thu 24 Sept to Thu 1 Oct
    assert _sustained_alert_days(HISTORY + mid_month) == [39]
    assert _sustained_alert_days(usual + month_end) == [60]
    assert _sustained_alert_days(usual + month_end, one_batch=True) == [60]    # whatever the batches
    assert _sustained_alert_days(HISTORY + mid_month + [(57, 40)], one_batch=True) == [39]   # each day its own
