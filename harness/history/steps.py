"""Step detection in a series of runs: where a figure moved to another level, and at which commit.

Binary segmentation with a permutation test, the scheme of E-Divisive (Matteson and James 2014, "A
nonparametric approach for multiple change point analysis of multivariate data", JASA 109:334) as MongoDB's
performance CI uses it (Daly et al. 2020, "The use of change point detection to identify software performance
regressions in a continuous integration system", ICPE): the split of a segment that best separates two levels
(the largest Welch-style t statistic over every split leaving at least ``MIN_RUNS`` runs on each side) is a step
when a permutation test says so (``PERMUTATIONS`` shuffles of the segment; p < ``ALPHA``), and each side is then
searched again. The permutation p-value needs no noise model: a noisy throughput series and a bitwise-reproducible
divergence series are judged alike (a series of exactly two constant levels is a step without a test: on one
fingerprint those figures are bitwise reproducible, so any move is real), and the false alarms per test are at
most ``ALPHA`` by construction. Shuffles are seeded, so a history is judged the
same every time. Thirty lines, not a dependency: ``ruptures`` would add a package and its own noise model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_RUNS = 2  # a level is at least two runs: one slow run is an outlier, not a step
PERMUTATIONS = 199
ALPHA = 0.01


@dataclass(frozen=True)
class Step:
    index: int  # the first run at the new level
    before: float  # median of the level before
    after: float  # median of the level after
    p_value: float

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else math.inf


def _best_split(x: np.ndarray) -> tuple[int, float]:
    """(split, statistic): the split with the largest two-sample t statistic (pooled variance: stable with a
    few runs a side, where one side's own variance can be near zero by chance)."""
    n = len(x)
    s1, s2 = np.cumsum(x), np.cumsum(x * x)
    floor = (max(float(np.max(np.abs(x))), 1e-300) * 1e-12) ** 2  # a noiseless split scores huge, not infinite
    best, where = -1.0, 0
    for k in range(MIN_RUNS, n - MIN_RUNS + 1):
        m1, m2 = s1[k - 1] / k, (s1[-1] - s1[k - 1]) / (n - k)
        ss = max(s2[k - 1] - k * m1 * m1, 0.0) + max((s2[-1] - s2[k - 1]) - (n - k) * m2 * m2, 0.0)
        t = abs(m1 - m2) / math.sqrt((ss / max(n - 2, 1) + floor) * (1 / k + 1 / (n - k)))
        if t > best:
            best, where = t, k
    return where, best


def _levels(segment: np.ndarray, k: int) -> bool:
    """Two constant levels: a bitwise-reproducible figure that moved, a step beyond any test."""
    return bool(np.ptp(segment[:k]) == 0 and np.ptp(segment[k:]) == 0 and segment[0] != segment[-1])


def steps(x: np.ndarray, seed: int = 0) -> list[Step]:
    """The steps of ``x`` (runs in order), each with the median level on its sides and its p-value."""
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    found: list[tuple[int, float]] = []

    def search(lo: int, hi: int) -> None:
        segment = x[lo:hi]
        if len(segment) < 2 * MIN_RUNS or np.ptp(segment) == 0:
            return
        k, stat = _best_split(segment)
        if _levels(segment, k):
            p = 0.0
        else:
            tie = stat * (1 - 1e-9)  # a shuffle that rebuilds the same partition sums in another order: a tie
            beaten = sum(_best_split(rng.permutation(segment))[1] >= tie for _ in range(PERMUTATIONS))
            p = (beaten + 1) / (PERMUTATIONS + 1)
        if p < ALPHA:
            found.append((lo + k, p))
            search(lo, lo + k)
            search(lo + k, hi)

    search(0, len(x))
    cuts = sorted(found)
    bounds = [0, *(c for c, _ in cuts), len(x)]
    return [Step(c, float(np.median(x[bounds[i]:c])), float(np.median(x[c:bounds[i + 2]])), p)
            for i, (c, p) in enumerate(cuts)]


__all__ = ["ALPHA", "MIN_RUNS", "PERMUTATIONS", "Step", "steps"]
