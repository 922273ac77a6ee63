"""Reference levels that a person's counters are judged against.

A `Baseline` holds, per counter, the 95th percentile of a day, of the busiest
hour of a day and of a 7-day sum, plus the daily median. Own baselines come from
the person's recent active days; peer baselines from every active day of the
peer group in the training period (shared by every detector instance through
the model directory, never by cross-partition calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detector.counters import N_COUNTERS

MIN_OWN_DAYS = 5
MIN_SPREAD = float(np.log(2.0))     # the least spread a count is standardised by: doubling is one spread


def standardised_excess(value: np.ndarray, median: np.ndarray, high: np.ndarray) -> np.ndarray:
    """z = max(0, (value - median) / max(high - median, MIN_SPREAD)), all three log1p of counts:
    how many usual spreads above the median a count is; quieter than usual never scores."""
    return np.maximum((value - median) / np.maximum(high - median, MIN_SPREAD), 0.0)


@dataclass(slots=True)
class Baseline:
    day_p50: list[float]
    day_p95: list[float]
    hour_p50: list[float]
    hour_p95: list[float]
    week_p50: list[float]
    week_p95: list[float]
    days: int
    _matrix: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def matrix(self) -> np.ndarray:
        """The six levels as one (6, counters) array, in `_LEVELS` order (built once)."""
        if self._matrix is None:
            self._matrix = np.log1p(np.array([getattr(self, k) for k in _LEVELS]))
        return self._matrix

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in _LEVELS} | {"days": self.days}

    @classmethod
    def from_dict(cls, data: dict) -> "Baseline":
        return cls(*(list(map(float, data[k])) for k in _LEVELS), int(data["days"]))


_LEVELS = ("day_p50", "day_p95", "hour_p50", "hour_p95", "week_p50", "week_p95")


def baseline_from_days(days: list[int], day_counts: np.ndarray, hour_maxima: np.ndarray) -> Baseline:
    """Baseline of one person (or one group) from active days.

    `days` are day ordinals (one per row; a group has repeats per person, so
    7-day sums are only meaningful for one person and are computed by the caller
    for groups via `weekly_sums`)."""
    week = weekly_sums(days, day_counts)
    return _levels(day_counts, hour_maxima, week, len(days))


def weekly_sums(days: list[int], day_counts: np.ndarray) -> np.ndarray:
    """Rolling 7-calendar-day sums ending on each active day of one person, without the busiest day.

    The week horizon is for sustained behaviour: a single busy day (or a single
    burst of theft, which the day horizon judges) is left out of its own week, so
    it neither inflates the person's weekly levels nor echoes for seven days."""
    if not days:
        return np.zeros((0, N_COUNTERS))
    ordinals = np.asarray(days)
    counts = np.asarray(day_counts, dtype=float)
    starts = np.searchsorted(ordinals, ordinals - 6, side="left")
    out = np.empty_like(counts)
    for i, start in enumerate(starts):
        window = counts[start:i + 1]
        out[i] = window.sum(axis=0) - window.max(axis=0)
    return out


def group_baseline(per_person: list[tuple[list[int], np.ndarray, np.ndarray]]) -> Baseline:
    """Baseline of a peer group from each member's active days."""
    counts = np.vstack([c for _, c, _ in per_person])
    hours = np.vstack([h for _, _, h in per_person])
    weeks = np.vstack([weekly_sums(d, c) for d, c, _ in per_person])
    return _levels(counts, hours, weeks, len(counts))


def _levels(days: np.ndarray, hours: np.ndarray, weeks: np.ndarray, n: int) -> Baseline:
    return Baseline(_percentile(days, 50), _percentile(days, 95), _percentile(hours, 50), _percentile(hours, 95),
                    _percentile(weeks, 50), _percentile(weeks, 95), n)


def _percentile(matrix: np.ndarray, q: float) -> list[float]:
    if len(matrix) == 0:
        return [0.0] * N_COUNTERS
    return np.percentile(matrix, q, axis=0, method="linear").tolist()
