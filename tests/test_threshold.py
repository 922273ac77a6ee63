"""The alert threshold meets the budget on the baseline, extrapolated when the baseline is short."""

import numpy as np
import pytest

from detector.model import ForestSettings, budget_threshold, tail_quantile


def _days(scores: np.ndarray) -> np.ndarray:
    return np.array([f"E{i}|1" for i in range(len(scores))])


def test_with_enough_days_the_threshold_lets_through_the_budgeted_share():
    scores = np.random.default_rng(0).exponential(1.0, 5_000)
    threshold = budget_threshold(scores, _days(scores), ForestSettings(alert_budget_per_1000_days=1.0))
    assert (scores > threshold).sum() == 5          # 1 per 1,000 of 5,000 employee-days
    assert threshold == np.sort(scores)[-6]


def test_a_day_counts_by_its_highest_row():
    scores = np.array([9.0, 8.0, 7.0] + [0.5] * 2_000)
    days = np.array(["E1|1", "E1|1", "E2|1"] + [f"E{i}|2" for i in range(2_000)])
    assert budget_threshold(scores, days, ForestSettings()) == 0.5     # 2,002 days allow 2 over: E1|1 and E2|1


@pytest.mark.parametrize("seed", range(8))
def test_with_too_few_days_the_threshold_is_extrapolated_past_the_highest(seed):
    """400 employee-days cannot show a 1-in-1,000 day. For exponential scores the true quantile is
    ln(1000) = 6.9; the tail fit lands near it, while the highest of 400 ranges from under 5 to over 8."""
    scores = np.random.default_rng(seed).exponential(1.0, 400)
    estimate = tail_quantile(np.sort(scores), 0.001)
    assert 5.5 <= estimate <= 8.5
    assert budget_threshold(scores, _days(scores), ForestSettings()) == max(estimate, scores.max())


def test_tail_quantile_declines_what_it_cannot_fit_or_need_not_extrapolate():
    assert tail_quantile(np.array([0.1, 0.2]), 0.001) == -np.inf                            # too few to fit
    assert tail_quantile(np.sort(np.random.default_rng(0).random(1_000)), 0.05) == -np.inf   # 50 over: within the top k
