"""The paired A/B verdict: how much slower the current code is than the baseline, with a confidence interval.

A shared machine drifts by tens of percent within seconds, and two processes differ by where their
memory landed; neither cancels between two runs made at different times. The A/B mode
(`harness.bench.ab`) therefore measures both sides in the same job: ``blocks`` blocks, each with a
fresh worker per side, and in each block ``pairs`` pairs of adjacent samples (order alternating AB,
BA), so each pair sees the same machine state. Per point:

* each pair's log ratio ``d = log(t_current / t_base)``;
* each block's estimate ``m_b = median_k d_bk`` (robust to a sample hit by a neighbour);
* the estimate ``m = mean_b m_b`` and its interval ``m ± t_{1-a, B-1} · sd(m_b) / sqrt(B)``: the
  blocks, not the pairs, are the independent units, since the process-to-process difference
  (memory placement) is shared by every pair of a block and varies only between blocks;
* ``a = alpha / points`` (Bonferroni): ``alpha`` bounds the chance that *one gate* of an unchanged
  build flags anything, whatever the number of points.

Verdicts, with ``r = exp(m)`` and ``tol`` the slowdown that does not count (default 0):

* ``slower``: the interval's lower end is above ``log(1 + tol)`` (a regression; the gate fails);
* ``faster``: the upper end is below ``-log(1 + tol)``;
* ``same``: the interval lies within ``±max(tol, resolution)``, where ``resolution`` is the slowdown
  the caller promises to resolve (the ``--ab-resolution`` of the CLI, default 5%);
* ``inconclusive``: none of these (too few blocks for the noise; the gate reports it, not fails);
* ``error``: a side failed (the point's reason says which and why); never a pass;
* ``skipped``: neither side can run the point here, for the same reason (a framework not
  installed, no GPU); a gate where every point is skipped fails (nothing was compared).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

VERDICTS = ("slower", "faster", "same", "inconclusive", "error", "skipped")
FAILING = ("slower", "error")


@dataclass(frozen=True, kw_only=True)
class PairedVerdict:
    """One point's comparison: the ratio current/base (per-step time), its interval and the verdict."""

    ratio: float
    low: float
    high: float
    blocks: int
    pairs: int
    verdict: str
    block_ratios: tuple[float, ...]


def block_estimates(log_ratios: Sequence[Sequence[float]]) -> np.ndarray:
    """Each block's median paired log ratio."""
    return np.array([float(np.median(block)) for block in log_ratios if len(block)])


def paired_verdict(log_ratios: Sequence[Sequence[float]], *, alpha: float = 0.01, points: int = 1,
                   tolerance: float = 0.0, resolution: float = 0.05) -> PairedVerdict:
    """The verdict over blocks of paired log ratios (see the module docstring)."""
    m_b = block_estimates(log_ratios)
    blocks, pairs = len(m_b), sum(len(b) for b in log_ratios)
    if blocks < 2:
        return PairedVerdict(ratio=math.nan, low=math.nan, high=math.nan, blocks=blocks, pairs=pairs,
                             verdict="error", block_ratios=tuple(np.exp(m_b)))
    m = float(m_b.mean())
    se = float(m_b.std(ddof=1)) / math.sqrt(blocks)
    half = float(stats.t.ppf(1 - alpha / max(points, 1), blocks - 1)) * se
    low, high = m - half, m + half
    limit = math.log1p(tolerance)
    if low > limit:
        verdict = "slower"
    elif high < -limit:
        verdict = "faster"
    elif high <= math.log1p(max(tolerance, resolution)) and low >= -math.log1p(max(tolerance, resolution)):
        verdict = "same"
    else:
        verdict = "inconclusive"
    return PairedVerdict(ratio=math.exp(m), low=math.exp(low), high=math.exp(high), blocks=blocks, pairs=pairs,
                         verdict=verdict, block_ratios=tuple(float(x) for x in np.exp(m_b)))


__all__ = ["FAILING", "VERDICTS", "PairedVerdict", "block_estimates", "paired_verdict"]
