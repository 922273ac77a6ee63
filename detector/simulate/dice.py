"""Deterministic randomness: numpy generators keyed by what they are for.

Every stream is a numpy `Generator` seeded from (config seed, purpose keys), so a
day or a person can be generated in any order and still come out identical.
`Dice` hands out scalar draws from pre-drawn blocks: a numpy call per scalar
would dominate the simulator's run time.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate, chain
from typing import TypeVar

import numpy as np

T = TypeVar("T")
_BLOCK = 4096


def generator(seed: int, *keys: int) -> np.random.Generator:
    """A generator for one purpose; `keys` are small non-negative integers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *keys])))


class Dice:
    """Fast scalar draws (uniform, normal and the shapes built from them).

    `u()` and `normal()` are the C-level `__next__` of an endless chain of
    pre-drawn blocks, so a draw costs a few tens of nanoseconds.
    """

    __slots__ = ("rng", "u", "normal")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.u = chain.from_iterable(_blocks(rng.random)).__next__          # uniform in [0, 1)
        self.normal = chain.from_iterable(_blocks(rng.standard_normal)).__next__

    @classmethod
    def of(cls, seed: int, *keys: int) -> "Dice":
        return cls(generator(seed, *keys))

    def below(self, n: int) -> int:
        return int(self.u() * n)

    def between(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi], both ends included."""
        return lo + int(self.u() * (hi - lo + 1))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.u()

    def loguniform(self, lo: float, hi: float) -> float:
        return lo * math.exp(math.log(hi / lo) * self.u())

    def chance(self, p: float) -> bool:
        return self.u() < p

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.u() * len(seq))]

    def pick_cum(self, seq: Sequence[T], cum: Sequence[float]) -> T:
        """Pick with cumulative weights `cum` (as built by `cumulative`)."""
        return seq[bisect_right(cum, self.u() * cum[-1])]

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.normal())

    def expo(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.u())

    def geometric(self, mean: float, cap: int) -> int:
        """A count >= 0 with the given mean, heavy enough for list sizes, capped."""
        return min(cap, int(self.expo(mean)))

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, int(round(lam + math.sqrt(lam) * self.normal())))
        limit, k, p = math.exp(-lam), 0, self.u()
        while p > limit:
            k += 1
            p *= self.u()
        return k

    def sample(self, seq: Sequence[T], k: int) -> list[T]:
        """k distinct items, in random order."""
        pool = list(seq)
        out = []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.below(len(pool))))
        return out

    def shuffled(self, seq: Sequence[T]) -> list[T]:
        return self.sample(seq, len(seq))


def _blocks(draw) -> Iterator[list[float]]:
    while True:
        yield draw(_BLOCK).tolist()


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))
