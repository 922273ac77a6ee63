"""The isolation forest: fit, choose a threshold for an alert budget, score in batches.

Follows scikit-learn's split: `fit` learns, `score` judges, parameters are
validated once here. Scores are `-score_samples`, so higher = more anomalous.
Rows whose every feature is zero (a person within their usual range on every
count) are not sent to the forest: they are the most normal rows there are and
get the forest's score for the all-zero vector, computed once.

An isolation forest cannot rank points beyond the range it was fitted on: every
row past the training maximum of a feature lands in the same leaf, so a pull
100 times larger than anything seen scores like the largest one seen. Worse, a
point extreme in one sparse feature (sequential lookups, new-column reads) is
rarely split on, because that feature is constant in most nodes, and scores
like an ordinary row. The score therefore adds how far a row lies beyond the
training envelope (each feature's largest training value), relative to that
envelope and on a log scale, for its most extreme feature:
    score = -score_samples(x) + w * log1p(max_f max(0, x_f - envelope_f) / max(envelope_f, 1))
Nothing in training lies beyond the envelope, so the threshold, calibrated on
this same score, is the forest's; the term only lifts rows unlike anything seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from detector.features import FEATURE_NAMES, N_FEATURES
from detector.forest import ForestScorer


@dataclass(frozen=True, slots=True)
class ForestSettings:
    n_estimators: int = 200
    max_samples: int = 1024
    random_state: int = 0
    envelope_quantile: float = 100.0
    extrapolation_weight: float = 0.2
    alert_budget_per_1000_days: float = 1.0   # baseline alerts allowed per 1,000 employee-days
    budget_safety: float = 1.0                # < 1 aims below the budget on the baseline

    def __post_init__(self) -> None:
        if self.n_estimators < 10:
            raise ValueError(f"n_estimators must be >= 10, got {self.n_estimators}")
        if not 0 < self.alert_budget_per_1000_days < 1000:
            raise ValueError(f"alert_budget_per_1000_days must be in (0, 1000), got {self.alert_budget_per_1000_days}")
        if not 0 < self.budget_safety <= 1:
            raise ValueError(f"budget_safety must be in (0, 1], got {self.budget_safety}")


@dataclass
class AnomalyModel:
    forest: IsolationForest
    threshold: float
    zero_score: float
    envelope: np.ndarray
    extrapolation_weight: float
    feature_names: tuple[str, ...] = field(default=FEATURE_NAMES)
    _scorer: ForestScorer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per loaded model: scoring a batch then costs no per-tree set-up.
        self._scorer = ForestScorer(self.forest)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Anomaly scores for a batch of rows (higher = more anomalous)."""
        scores = np.full(len(matrix), self.zero_score)
        active = matrix.any(axis=1)
        if active.any():
            rows = matrix[active]
            outside = (np.maximum(rows - self.envelope, 0.0) / np.maximum(self.envelope, 1.0)).max(axis=1)
            scores[active] = -self._scorer.score_samples(rows) + self.extrapolation_weight * np.log1p(outside)
        return scores


def fit_model(matrix: np.ndarray, day_ids: np.ndarray, settings: ForestSettings) -> AnomalyModel:
    """Fit on baseline rows and pick the threshold that meets the alert budget.

    `day_ids` identifies the employee-day of each row: the budget counts
    employee-days with at least one row over the threshold, as alerts are."""
    if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES:
        raise ValueError(f"expected a matrix with {N_FEATURES} feature columns, got shape {matrix.shape}")
    if len(matrix) < 100:
        raise ValueError(f"need at least 100 baseline rows to fit, got {len(matrix)}; train on a longer period")
    forest = IsolationForest(n_estimators=settings.n_estimators, max_samples=min(settings.max_samples, len(matrix)),
                             random_state=settings.random_state)
    forest.fit(matrix)
    zero_score = float(-forest.score_samples(np.zeros((1, matrix.shape[1])))[0])
    envelope = np.percentile(matrix, settings.envelope_quantile, axis=0)
    model = AnomalyModel(forest, np.inf, zero_score, envelope, settings.extrapolation_weight)
    model.threshold = budget_threshold(model.score(matrix), day_ids, settings)
    return model


def budget_threshold(scores: np.ndarray, day_ids: np.ndarray, settings: ForestSettings) -> float:
    """The score that baseline employee-days exceed at no more than the budgeted rate.

    Employee-days are scored by their highest row, as alerts are counted. With
    fewer baseline days than the budget needs to allow one (under 1,000 at the
    default), the highest baseline day says only that the rate is below 1 in
    their number: the threshold is then extrapolated past it (`tail_quantile`)."""
    _, inverse = np.unique(day_ids, return_inverse=True)
    day_max = np.full(inverse.max() + 1, -np.inf)
    np.maximum.at(day_max, inverse, scores)
    rate = settings.alert_budget_per_1000_days * settings.budget_safety / 1000.0
    allowed = int(rate * len(day_max))
    ordered = np.sort(day_max)
    empirical = float(ordered[len(ordered) - 1 - allowed])
    return max(empirical, tail_quantile(ordered, rate)) if allowed == 0 else empirical


def tail_quantile(ordered: np.ndarray, rate: float, share: float = 0.05, least: int = 20) -> float:
    """The score exceeded at `rate`, by peaks over threshold: an exponential fitted to the top
    k days' excesses over the next one (k: `share` of the days, at least `least`), whose
    quantile for `rate` may lie beyond the highest day. -inf when the days are too few to fit
    or the rate is within the top k (then the empirical quantile is the estimate)."""
    n = len(ordered)
    k = min(max(least, int(share * n)), n - 1)
    if k < 2 or rate * n >= k:
        return -np.inf
    floor = ordered[n - k - 1]
    scale = float(np.mean(ordered[n - k:] - floor))
    return float(floor + scale * np.log(k / (rate * n)))
