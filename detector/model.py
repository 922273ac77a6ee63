"""The isolation forest: fit, choose a threshold for an alert budget, score in batches.

Follows scikit-learn's split: `fit` learns, `score` judges, parameters are
validated once here. Scores are `-score_samples`, so higher = more anomalous.
Rows whose every feature is zero (a person within their usual range on every
count) are not sent to the forest: they are the most normal rows there are and
get the forest's score for the all-zero vector, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from detector.features import FEATURE_NAMES, N_FEATURES


@dataclass(frozen=True, slots=True)
class ForestSettings:
    n_estimators: int = 200
    max_samples: int = 256
    random_state: int = 0
    alert_budget_per_1000_days: float = 1.0   # baseline alerts allowed per 1,000 employee-days
    budget_safety: float = 0.5                # aim below the budget: test data is never the training data

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
    feature_names: tuple[str, ...] = field(default=FEATURE_NAMES)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Anomaly scores for a batch of rows (higher = more anomalous)."""
        scores = np.full(len(matrix), self.zero_score)
        active = matrix.any(axis=1)
        if active.any():
            scores[active] = -self.forest.score_samples(matrix[active])
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
    model = AnomalyModel(forest, threshold=np.inf, zero_score=zero_score)
    model.threshold = budget_threshold(model.score(matrix), day_ids, settings)
    return model


def budget_threshold(scores: np.ndarray, day_ids: np.ndarray, settings: ForestSettings) -> float:
    """Smallest threshold whose alerting employee-days stay within the budget."""
    _, inverse = np.unique(day_ids, return_inverse=True)
    day_max = np.full(inverse.max() + 1, -np.inf)
    np.maximum.at(day_max, inverse, scores)
    allowed_days = int(settings.alert_budget_per_1000_days * settings.budget_safety / 1000.0 * len(day_max))
    ordered = np.sort(day_max)
    return float(ordered[len(ordered) - 1 - allowed_days])
