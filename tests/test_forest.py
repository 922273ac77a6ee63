"""ForestScorer must give exactly IsolationForest.score_samples' scores."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from detector.forest import ForestScorer


def _forest(max_features=1.0, seed=0):
    rng = np.random.default_rng(seed)
    train = np.abs(rng.normal(0, 1, (600, 6))) * rng.integers(0, 2, (600, 6))
    return IsolationForest(n_estimators=25, max_samples=256, max_features=max_features,
                           random_state=seed).fit(train)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")   # values beyond float32, on purpose
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_score_samples_on_random_rows(seed):
    forest = _forest(seed=seed)
    rng = np.random.default_rng(seed + 10)
    rows = np.abs(rng.normal(0, 2, (500, 6))) * rng.integers(0, 2, (500, 6))
    rows[:5] = [0, 0, 0, 0, 0, 1e40]   # beyond float32: cast to inf, as sklearn does
    expected = forest.score_samples(rows)
    assert np.array_equal(ForestScorer(forest).score_samples(rows), expected)
    assert np.allclose(ForestScorer(forest).score_samples(rows), expected, rtol=0, atol=1e-12)


def test_a_single_row_and_float32_input():
    forest = _forest()
    row = np.array([[0.5, 0.0, 3.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    assert np.array_equal(ForestScorer(forest).score_samples(row), forest.score_samples(row))


def test_feature_subsampling_and_nan_fall_back_to_sklearn():
    forest = _forest(max_features=0.5)
    rows = np.abs(np.random.default_rng(3).normal(0, 1, (50, 6)))
    assert np.array_equal(ForestScorer(forest).score_samples(rows), forest.score_samples(rows))
    forest = _forest()
    rows[0, 2] = np.nan
    assert np.array_equal(ForestScorer(forest).score_samples(rows), forest.score_samples(rows))


def test_a_forest_without_sklearns_private_arrays_is_scored_by_sklearn():
    forest = _forest()
    rows = np.abs(np.random.default_rng(4).normal(0, 1, (20, 6)))
    expected = forest.score_samples(rows)
    del forest._decision_path_lengths
    scorer = ForestScorer(forest)
    forest._decision_path_lengths = [t.tree_.compute_node_depths() for t in forest.estimators_]
    assert np.array_equal(scorer.score_samples(rows), expected)


def test_rows_of_the_wrong_width_are_refused_as_sklearn_refuses_them():
    with pytest.raises(ValueError):
        ForestScorer(_forest()).score_samples(np.zeros((3, 4)))
