"""Isolation-forest scoring without scikit-learn's per-tree overhead.

Why this module exists
----------------------
``IsolationForest.score_samples`` walks each tree through joblib (a delayed call, a lock and
``DecisionTree.apply``'s checks per tree and batch): with 200 trees and a few thousand rows
per scoring batch that overhead costs more than the walks themselves. ``ForestScorer``
computes exactly what scikit-learn's ``_compute_score_samples`` computes, with the same
floating-point operations in the same order, so scores are bit-identical:

* rows are cast to float32, as ``score_samples``' input validation does;
* each tree's Cython ``Tree.apply`` finds the leaves (no Python checks around it);
* per tree, ``depth[leaf] + average_path_length[leaf] - 1.0`` is looked up from one array
  precomputed when the model is loaded, and added to the running depths tree by tree;
* the score is ``2 ** -(depths / (n_trees * c(max_samples)))``.

Forests whose trees see a subset of the features (max_features < 1.0) and rows with a NaN
(whose path depends on the trees' missing-value routing) go to ``score_samples``.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

__all__ = ["ForestScorer"]


class ForestScorer:
    """``forest.score_samples`` for a fitted forest, with its per-tree arrays built once."""

    __slots__ = ("_forest", "_trees", "_leaf_depths", "_denominator")

    def __init__(self, forest: IsolationForest) -> None:
        self._forest = forest
        self._trees = self._leaf_depths = self._denominator = None
        try:
            if forest._max_features != forest.n_features_in_:  # sklearn's own test for subsampling
                return
            # Per node, the expression sklearn evaluates per sample and tree.
            self._leaf_depths = [
                np.asarray(path) + np.asarray(average) - 1.0
                for path, average in zip(forest._decision_path_lengths, forest._average_path_length_per_tree)
            ]
            self._denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])
        except AttributeError:  # another scikit-learn's private layout: score through its public API
            return
        self._trees = [estimator.tree_ for estimator in forest.estimators_]

    def score_samples(self, rows: np.ndarray) -> np.ndarray:
        """Equal to ``forest.score_samples(rows)``; lower = more abnormal."""
        X = np.ascontiguousarray(rows, dtype=np.float32)
        if self._trees is None or X.ndim != 2 or X.shape[1] != self._forest.n_features_in_ or np.isnan(X).any():
            return self._forest.score_samples(rows)  # it validates the shape; NaN follows its missing-value routing
        depths = np.zeros(len(X), order="f")
        for tree, leaf_depths in zip(self._trees, self._leaf_depths):
            depths += leaf_depths[tree.apply(X)]
        denominator = self._denominator
        return -(2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)))
