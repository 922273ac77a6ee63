"""Reference levels that a person's counters are judged against.

A `Baseline` holds, per counter, the 95th percentile of a day, of the busiest
hour of a day and of a 7-day sum, plus the daily median. Own baselines come from
the person's recent active days; peer baselines from every active day of the
peer group in the training period (shared by every detector instance through
the model directory, never by cross-partition calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.counters import N_COUNTERS

MIN_OWN_DAYS = 5


@dataclass(slots=True)
class Baseline:
    day_p50: list[float]
    day_p95: list[float]
    hour_p95: list[float]
    week_p95: list[float]
    days: int

    def to_dict(self) -> dict:
        return {"day_p50": self.day_p50, "day_p95": self.day_p95, "hour_p95": self.hour_p95,
                "week_p95": self.week_p95, "days": self.days}

    @classmethod
    def from_dict(cls, data: dict) -> "Baseline":
        return cls(*(list(map(float, data[k])) for k in ("day_p50", "day_p95", "hour_p95", "week_p95")), int(data["days"]))


def baseline_from_days(days: list[int], day_counts: np.ndarray, hour_maxima: np.ndarray) -> Baseline:
    """Baseline of one person (or one group) from active days.

    `days` are day ordinals (one per row; a group has repeats per person, so
    7-day sums are only meaningful for one person and are computed by the caller
    for groups via `weekly_sums`)."""
    week = weekly_sums(days, day_counts)
    return Baseline(
        day_p50=_percentile(day_counts, 50),
        day_p95=_percentile(day_counts, 95),
        hour_p95=_percentile(hour_maxima, 95),
        week_p95=_percentile(week, 95),
        days=len(days),
    )


def weekly_sums(days: list[int], day_counts: np.ndarray) -> np.ndarray:
    """Rolling 7-calendar-day sums ending on each active day of one person."""
    if not days:
        return np.zeros((0, N_COUNTERS))
    ordinals = np.asarray(days)
    cumulative = np.cumsum(day_counts, axis=0)
    starts = np.searchsorted(ordinals, ordinals - 6, side="left")
    before = np.where(starts[:, None] > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
    return cumulative - before


def group_baseline(per_person: list[tuple[list[int], np.ndarray, np.ndarray]]) -> Baseline:
    """Baseline of a peer group from each member's active days."""
    counts = np.vstack([c for _, c, _ in per_person])
    hours = np.vstack([h for _, _, h in per_person])
    weeks = np.vstack([weekly_sums(d, c) for d, c, _ in per_person])
    return Baseline(_percentile(counts, 50), _percentile(counts, 95), _percentile(hours, 95),
                    _percentile(weeks, 95), len(counts))


def _percentile(matrix: np.ndarray, q: float) -> list[float]:
    if len(matrix) == 0:
        return [0.0] * N_COUNTERS
    return np.percentile(matrix, q, axis=0, method="linear").tolist()
