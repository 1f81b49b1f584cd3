"""A benchmark's result, which only keeps (after ``torch.utils.benchmark.Measurement``).

The raw per-step times of every sample, a frozen key naming what was measured, statistics derived
lazily from the samples, and `Measurement.merge`, which pools the rounds of one point (fresh
workers each) into one measurement that still knows each round's median: the run-to-run noise the
regression gate tests against (`harness.gate.throughput`). The timer is `harness.bench.timer`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """Per-step times of one benchmark point.

    ``sample_s``: each sample's time per step (a block of ``steps_per_sample`` steps and one
    synchronisation, divided by the steps), in the order taken; ``round_median_s``: the median of
    each measurement merged into this one (empty before a merge)."""

    sample_s: tuple[float, ...]
    key: tuple = ()
    steps_per_sample: int = 1
    first_step_s: float = math.nan
    warmup_s: float = 0.0
    round_median_s: tuple[float, ...] = field(default=())

    @cached_property
    def _quartiles(self) -> tuple[float, float, float]:
        if not self.sample_s:
            return math.nan, math.nan, math.nan
        q1, median, q3 = np.percentile(self.sample_s, [25, 50, 75])
        return float(q1), float(median), float(q3)

    @property
    def median_s(self) -> float:
        return self._quartiles[1]

    @property
    def q1_s(self) -> float:
        return self._quartiles[0]

    @property
    def q3_s(self) -> float:
        return self._quartiles[2]

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s

    @property
    def samples(self) -> int:
        return len(self.sample_s)

    @property
    def compile_s(self) -> float:
        """Tracing and compilation: the first step's excess over the median step (never negative)."""
        return max(0.0, self.first_step_s - self.median_s)

    @property
    def rounds(self) -> int:
        return len(self.round_median_s) or 1

    @staticmethod
    def merge(measurements: Iterable[Measurement]) -> list[Measurement]:
        """One measurement per key: the samples pooled in order, the first step the median of the
        first steps, and each merged measurement's median kept as a round."""
        groups: dict[tuple, list[Measurement]] = {}
        for m in measurements:
            groups.setdefault(m.key, []).append(m)
        out = []
        for key, group in groups.items():
            rounds = tuple(r for m in group for r in (m.round_median_s or (m.median_s,)))
            out.append(Measurement(sample_s=tuple(x for m in group for x in m.sample_s), key=key,
                                   steps_per_sample=group[0].steps_per_sample,
                                   first_step_s=float(np.median([m.first_step_s for m in group])),
                                   warmup_s=sum(m.warmup_s for m in group), round_median_s=rounds))
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any], key: Sequence[str] = ()) -> Measurement:
        """A throughput row's measurement: its raw samples (a row from before samples were kept
        has only its median, one sample), first step and round medians."""
        samples = _floats(row.get("sample_s"))
        if not samples and _finite(row.get("median_s")):
            samples = (float(row["median_s"]),)
        first = row.get("first_step_s")
        return cls(sample_s=samples, key=tuple(row.get(k) for k in key),
                   steps_per_sample=int(row["steps_per_sample"]) if _finite(row.get("steps_per_sample")) else 1,
                   first_step_s=float(first) if _finite(first) else math.nan,
                   round_median_s=_floats(row.get("round_median_s")))

    def row(self) -> dict[str, Any]:
        """The measurement's throughput columns (`harness.base.schema.THROUGHPUT`)."""
        return {"median_s": self.median_s, "q1_s": self.q1_s, "q3_s": self.q3_s, "iqr_s": self.iqr_s,
                "samples": self.samples, "steps_per_sample": self.steps_per_sample,
                "first_step_s": self.first_step_s, "compile_s": self.compile_s, "sample_s": list(self.sample_s)}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(value)


def _floats(value: Any) -> tuple[float, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    return tuple(float(x) for x in value)


__all__ = ["Measurement"]
