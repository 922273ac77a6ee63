"""Sustained excess: slow theft that stays under every single day's radar.

Low-and-slow exfiltration reads two or three times a person's usual amount of
personal data, day after day. No single day stands out (a busy day reaches
that too), but an ordinary person does not stay above their usual level for
days in a row. A one-sided CUSUM (Page's cumulative sum) of each day's
standardised excess over own history accumulates exactly that:

    S_d = max(0, S_(d-1) + min(z_d, CAP) - ALLOWANCE)

where z_d is the day's own excess (the day cell of `features`, after cohort
adjustment, so a month-end or a festival that lifts the whole role does not
accumulate). A day at the usual level (z near 0) takes ALLOWANCE off, a single
burst adds at most CAP - ALLOWANCE (bursts are the day horizon's business), and
only days without activity (weekends, leave) leave S as it was. The feature is
S of the completed days plus today's contribution so far. The `sustained_excess`
rule alerts when S reaches its limit on a day that adds to it, then restarts S,
and S stays at zero (the feature included) until a day that does not add ends the
run: one alert per run, however long it lasts, where a restarted sum alone would
alert every day or two for as long as the person keeps reading more. On a
month's first and last working days (`calendar.is_period_day`) the rule needs
one busy day's worth more (CAP - ALLOWANCE above its limit): a close lifts
whole teams day after day, and the cohort adjustment catches it only once
colleagues have started.

S is updated from snapshots in stream order, never at day rollover, so it
depends only on the events, not on batch boundaries, and is saved with the state.

While a run goes on, its days are under suspicion and left out of the person's
own baseline (for at most `SUSPECT_DAYS`): a CUSUM compares with the in-control
level, and a thief's own elevated days must not become the usual they are
judged against. A lasting change of work is learned once the suspicion expires.
Which days are suspect must not depend on when scoring ran, so the state keeps
a second sum of the same form, folded at each day rollover in event order, on
the day's raw excess (`day_excess`, before cohort adjustment); a month's first
and last working days (`calendar.is_period_day`), when whole teams close their
books, never count as suspect.
"""

from __future__ import annotations

import numpy as np

from detector import counters as C
from detector.baseline import Baseline, standardised_excess

CAP = 2.0            # one day contributes at most this much excess
ALLOWANCE = 0.6      # excess a normal day may have without accumulating
SUSPECT_DAYS = 10    # calendar days a suspicious run stays out of the own baseline
TRACKED = ("sensitive_rows", "national_id_rows", "phone_rows", "address_rows", "financial_rows",
           "name_rows")       # counters whose sustained excess is accumulated
MIN_DAY_ROWS = 100   # a day reading fewer rows of a counter adds nothing: too little to be worth selling
TRACKED_INDEX = [C.INDEX[name] for name in TRACKED]


class SustainedExcess:
    """One person's CUSUM per tracked counter: the completed days' sum and today's latest excess."""

    __slots__ = ("day", "completed", "today", "since", "muted", "alarmed")

    def __init__(self, day: int, completed: np.ndarray, today: np.ndarray, since: int | None = None,
                 muted: int | None = None, alarmed: bool = False) -> None:
        self.day, self.completed, self.today = day, completed, today
        self.since = since           # first day of the current accumulation; None while S is zero
        self.muted = muted           # the day of the last alarm (it cannot be the day that ends the run)
        self.alarmed = alarmed       # a run was reported and has not ended yet: S stays at zero

    def observe(self, day: int, excess: np.ndarray) -> np.ndarray:
        """Take the latest own excess of `day` (tracked counters); return S per counter, today included."""
        if day > self.day:
            self._complete_day()
            self.day = day
        self.today = excess
        if self.alarmed:                         # a reported run adds nothing until it ends
            return np.zeros_like(self.completed)
        return _step(self.completed, excess)

    def _complete_day(self) -> None:
        if self.alarmed:
            if self.day != self.muted and not (np.minimum(self.today, CAP) > ALLOWANCE).any():
                self.alarmed = False             # a day that did not add: the reported run is over
        else:
            self.completed = _step(self.completed, self.today)
        if not self.completed.any():
            self.since = None
        elif self.since is None:
            self.since = self.day

    def restart(self) -> None:
        """After an alarm the sum starts again from zero (as a CUSUM chart does) once the reported
        run has ended; its days stay suspect."""
        self.completed = np.zeros_like(self.completed)
        self.today = np.zeros_like(self.today)
        self.muted, self.alarmed = self.day, True

    def suspect_since(self, today: int) -> int | None:
        """The first day to leave out of the own baseline, if a suspicious run is recent enough."""
        if self.since is None or today - self.since > SUSPECT_DAYS:
            return None
        return self.since

    def to_list(self) -> list:
        return [self.day, self.completed.tolist(), self.today.tolist(), self.since, self.muted, self.alarmed]

    @classmethod
    def from_list(cls, data: list) -> "SustainedExcess | None":
        """Restore a saved CUSUM (saved before alarms were remembered: none is); None when it
        tracked other counters (then it starts afresh)."""
        day, completed, today, since, *alarm = data
        if len(completed) != len(TRACKED) or len(today) != len(TRACKED):
            return None
        muted, alarmed = alarm if len(alarm) == 2 else (None, False)
        return cls(int(day), np.asarray(completed, dtype=float), np.asarray(today, dtype=float), since,
                   muted, bool(alarmed))

    @classmethod
    def start(cls, day: int) -> "SustainedExcess":
        return cls(day, np.zeros(len(TRACKED)), np.zeros(len(TRACKED)))


def _step(total: np.ndarray, excess: np.ndarray) -> np.ndarray:
    return np.maximum(total + np.minimum(excess, CAP) - ALLOWANCE, 0.0)


def day_excess(day_counts: list[float], baseline: Baseline | None) -> np.ndarray:
    """One day's own excess z on the tracked counters, as `features` computes the day cells (before
    cohort adjustment); zero without own history and for counters under `MIN_DAY_ROWS`."""
    if baseline is None:
        return np.zeros(len(TRACKED))
    values = np.array([day_counts[i] for i in TRACKED_INDEX])
    median = np.log1p([baseline.day_p50[i] for i in TRACKED_INDEX])
    high = np.log1p([baseline.day_p95[i] for i in TRACKED_INDEX])
    return np.where(values >= MIN_DAY_ROWS, standardised_excess(np.log1p(values), median, high), 0.0)
