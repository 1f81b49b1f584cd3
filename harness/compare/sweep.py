"""Comparing semantics: the same settings through every framework's own semantics, at every gradient scale.

A *scenario* states framework-neutral settings once (``lr, decay, eps, momentum,
centered, weight_decay``; `reference.translate.knob_args` maps each to the framework's
own argument: ``alpha`` for torch, ``rho`` for Keras, ...). What a scenario leaves unset
is each framework's default, which is exactly how a model ported by copying the settings
one knows about behaves. No settings at all means every framework's own defaults.

Each framework's semantics (its preset) runs as the float64 reference on one gradient
stream; the conformance suites verify those references against the real frameworks, so
this needs no framework installed. Any stream works (a kind with options, a recorded
``.npz``).

**Gradient scale.** How far two semantics part depends on the gradients' size: eps
placement is invisible for N(0, 1) gradients and dominates at 1e-4. Unless the stream
fixes its scale (an explicit ``scale``, a recording, ``tiny``/``huge``/``zeros``), a
scenario sweeps `DEFAULT_SCALES` (1e-6 ... 1e2, the stream's values times each) and a
pair's verdict is its **worst** scale; every scale is kept in the ``sweep`` table.

For a pair (A, B) at one scale:

* ``divergence`` = ``max_t ||p_A - p_B||_2 / max(||p_A - p_0||_2, ||p_B - p_0||_2)``:
  the difference as a fraction of how far the parameters moved (1 = unrelated);
* ``budgets64`` / ``budgets32``: ``max |p_A - p_B| / (u * B_t)`` in float64 and float32
  rounding budgets (`reference.budget`), against the two specs' tolerances;
* ``verdict`` (`VERDICTS`): ``identical`` (bitwise), ``rounding`` (within float64
  rounding: the same mathematics), ``below float32`` (a float32 run could not tell them
  apart), then graded by divergence: ``slight`` (< 1e-3 of the distance moved),
  ``moderate`` (< 0.1), ``large`` (< 1), ``unrelated`` (>= 1); and ``degenerate`` when
  neither side's parameters ever move to a finite new value, or both end entirely
  non-finite (an overflow on both sides agrees trivially): nothing was compared.

This module is the engine (scenarios, trajectories, one comparison, the sweep over scales);
`harness.compare.parity` runs it over every pair of a scenario, and attribution to knobs
(Shapley values, summing to the pair's divergence) is in `harness.compare.attribution`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.base import schema
from harness.base.limits import CHUNK_BYTES, TRAJECTORY_BYTES, check_parity, count_params
from harness.base.streams import GradientStream, StreamSpec, initial_params
from reference import RMSpropSpec, implementations, presets
from reference.budget import UNIT_ROUNDOFF, run_tolerance
from reference.errors import InputError, InputValueError
from reference.trajectory import record_steps, trajectory
from reference.translate import KNOBS, Unsupported, knob_args

STANDARD_SHAPES = {"w": (32, 16), "b": (16,)}
STANDARD_STEPS = 200
#: Gradient scales a scenario sweeps unless its stream fixes the scale.
DEFAULT_SCALES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
#: Verdicts from the closest to the farthest; ``degenerate`` means nothing was compared.
VERDICTS = ("identical", "rounding", "below float32", "slight", "moderate", "large", "unrelated", "degenerate")
#: Upper bounds of the graded divergence verdicts (a fraction of the distance the parameters moved).
GRADES = (("slight", 1e-3), ("moderate", 1e-1), ("large", 1.0))
SAME_MATHEMATICS = ("identical", "rounding")
PAIR_COLUMNS = schema.PARITY
SWEEP_COLUMNS = schema.SWEEP
#: Stream kinds whose size is their point (or is stated by the data): never swept.
_FIXED_SCALE = ("tiny", "huge", "zeros", "recorded", "arrays", "nonfinite")
_SCALE_OPTIONS = ("scale", "value", "low", "high")


class ParityError(InputValueError):
    """A scenario that cannot be compared (unknown preset, a setting no framework takes); one line."""


def grade(divergence: float) -> str:
    """The verdict word of a divergence beyond float32 rounding."""
    for word, bound in GRADES:
        if divergence < bound:
            return word
    return "unrelated"


def rank(verdict: str) -> int:
    """Order of verdicts from the closest; ``degenerate`` ranks below everything."""
    return -1 if verdict == "degenerate" else VERDICTS.index(verdict)


@dataclass(frozen=True)
class Scenario:
    """Settings stated once, compared across ``presets`` on one gradient stream."""

    name: str = "defaults"
    settings: Mapping[str, Any] = field(default_factory=dict)
    presets: tuple[str, ...] = field(default_factory=implementations.parity_presets)  # records with parity=True
    stream: StreamSpec = field(default_factory=StreamSpec)
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: dict(STANDARD_SHAPES))
    steps: int = STANDARD_STEPS
    seed: int = 0
    lrs: tuple[float, ...] | None = None  # a schedule: the lr of steps 1..steps (replaces settings' lr)
    description: str = ""
    scales: tuple[float, ...] | str = "auto"  # "auto" (sweep unless the stream fixes its scale), "none", or gains

    def __post_init__(self) -> None:
        unknown = sorted(set(self.settings) - set(KNOBS))
        if unknown:
            raise ParityError(f"parity {self.name!r}: unknown setting {unknown[0]!r} (settings: {', '.join(KNOBS)})")
        known = [p for p in implementations.names() if p != "spec"]
        bad = [p for p in self.presets if p not in known]
        if bad:
            raise ParityError(f"parity {self.name!r}: unknown preset {bad[0]!r} (known: {', '.join(known)})")
        if len(set(self.presets)) < 2:
            raise ParityError(f"parity {self.name!r}: needs at least two presets to compare")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ParityError(f"parity {self.name!r}: steps={self.steps!r} must be an integer >= 1")
        if self.lrs is not None and len(self.lrs) < self.steps:
            raise ParityError(f"parity {self.name!r}: {len(self.lrs)} scheduled lrs for {self.steps} steps")
        if isinstance(self.scales, str):
            if self.scales not in ("auto", "none"):
                raise ParityError(f"parity {self.name!r}: scales={self.scales!r}: 'auto', 'none' or a list of numbers")
        elif not self.scales or not all(isinstance(s, int | float) and not isinstance(s, bool) and
                                        math.isfinite(s) and s > 0 for s in self.scales):
            raise ParityError(f"parity {self.name!r}: scales={self.scales!r}: finite numbers > 0")
        check_parity(self.steps, count_params(self.shapes), f"parity {self.name!r}")

    def swept(self) -> bool:
        """Whether ``auto`` sweeps this stream: its scale is not fixed by its kind, options or data."""
        return self.stream.kind not in _FIXED_SCALE and not set(self.stream.options) & set(_SCALE_OPTIONS)

    def scale_list(self) -> tuple[float, ...]:
        """The gains applied to the stream, one comparison each."""
        if self.scales == "none" or (self.scales == "auto" and not self.swept()):
            return (1.0,)
        return DEFAULT_SCALES if self.scales == "auto" else tuple(float(s) for s in self.scales)

    def args(self, preset: str) -> dict[str, Any]:
        """``preset``'s own constructor arguments for these settings (its defaults elsewhere)."""
        out = dict(presets.REQUIRED_DEFAULTS.get(preset, {}))
        for knob, value in self.settings.items():
            out |= knob_args(preset, knob, value)
        return out

    def specs(self) -> tuple[dict[str, RMSpropSpec], dict[str, str]]:
        """The spec of every preset that can take the settings, and why the others cannot."""
        specs, skipped = {}, {}
        for preset in dict.fromkeys(self.presets):
            try:
                specs[preset] = presets.get(preset)(**self.args(preset))
            except Unsupported as exc:
                skipped[preset] = str(exc)
            except InputError as exc:
                raise ParityError(f"parity {self.name!r}: {preset}: {exc}") from None
        return specs, skipped


# ------------------------------------------------------------------ trajectories
@dataclass
class Trajectory:
    """Flattened float64 parameters at the recorded steps, with their budget scales ``B_t``."""

    params0: np.ndarray
    params: dict[int, np.ndarray]
    scale: dict[int, np.ndarray]

    @property
    def moved(self) -> bool:
        """Whether any parameter ever reaches a finite value other than its initial one."""
        with np.errstate(invalid="ignore"):
            return any(bool(np.any(np.isfinite(p) & (p != self.params0))) for p in self.params.values())

    @property
    def blown(self) -> bool:
        """Whether every parameter is non-finite at the last recorded step (the run overflowed)."""
        last = self.params[max(self.params)] if self.params else self.params0
        return not bool(np.isfinite(last).any())


class Runner:
    """Runs specs on one scenario's stream at one gradient scale; each distinct spec once."""

    def __init__(self, scenario: Scenario, record: int = 24, scale: float = 1.0):
        self.scenario = scenario
        stream = GradientStream(scenario.stream, scenario.shapes, gain=scale)
        self.stream, self.scale = stream, scale
        recorded = stream.recorded_params()
        self.params0 = recorded if recorded is not None else initial_params(stream.shapes, scenario.seed)
        steps = scenario.steps
        self.record = set(record_steps(steps, record))
        self._cache: OrderedDict[RMSpropSpec, Trajectory] = OrderedDict()  # least recently used first
        self._grads: list[dict[str, np.ndarray]] | None = None
        n = count_params(stream.shapes)
        self._keep = steps * n * 8 <= 4 * CHUNK_BYTES  # replay from memory when small
        self._capacity = max(4, int(TRAJECTORY_BYTES // max(1, 2 * len(self.record) * n * 8)))

    def grads(self):
        if not self._keep:
            return self.stream.steps(self.scenario.steps, "float64")
        if self._grads is None:  # every spec replays the same steps: small streams are kept once
            self._grads = list(self.stream.steps(self.scenario.steps, "float64"))
        return self._grads

    def run(self, spec: RMSpropSpec) -> Trajectory:
        if spec in self._cache:
            self._cache.move_to_end(spec)
        else:
            self._cache[spec] = self._run(spec)
            while len(self._cache) > self._capacity:  # bounded memory: a large recording recomputes instead
                self._cache.popitem(last=False)
        return self._cache[spec]

    def _run(self, spec: RMSpropSpec) -> Trajectory:
        names = list(self.params0)
        points = trajectory(spec, self.grads(), self.params0, self.record, self.scenario.lrs, state=False)
        return Trajectory(_flat(self.params0, names), {t: _flat(p.params, names) for t, p in points.items()},
                          {t: _flat(p.params_scale, names) for t, p in points.items()})


def _flat(d: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(d[n], np.float64).ravel() for n in names])


def compare(a: Trajectory, b: Trajectory, spec_a: RMSpropSpec, spec_b: RMSpropSpec, steps: int) -> dict[str, Any]:
    """The pair metrics of the module docstring."""
    divergence = max_abs = b64 = b32 = 0.0
    for t in sorted(b.params):
        pa, pb = a.params[t], b.params[t]
        with np.errstate(all="ignore"):
            diff = np.where(pa == pb, 0.0, np.abs(pa - pb))  # the same infinity on both sides: equal
        both_nan = np.isnan(pa) & np.isnan(pb)
        diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))  # +inf vs -inf, NaN on one side
        with np.errstate(all="ignore"):
            moved = max(float(np.linalg.norm(pa - a.params0)), float(np.linalg.norm(pb - b.params0)))
            norm = float(np.linalg.norm(diff))
        divergence = max(divergence, 0.0 if norm == 0 else norm / moved if moved > 0 else math.inf)
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        scale = np.maximum(a.scale[t], b.scale[t])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / scale)
        worst = float(np.nan_to_num(ratio, nan=np.inf).max(initial=0.0))
        b64 = max(b64, worst / UNIT_ROUNDOFF["float64"])
        b32 = max(b32, worst / UNIT_ROUNDOFF["float32"])
    if math.isnan(divergence):
        divergence = math.inf
    tol64 = max(run_tolerance(spec_a, steps, "float64"), run_tolerance(spec_b, steps, "float64"))
    tol32 = max(run_tolerance(spec_a, steps, "float32"), run_tolerance(spec_b, steps, "float32"))
    if not (a.moved or b.moved) or (a.blown and b.blown):
        verdict = "degenerate"
    elif max_abs == 0:
        verdict = "identical"
    elif b64 <= tol64:
        verdict = "rounding"
    elif b32 <= tol32:
        verdict = "below float32"
    else:
        verdict = grade(divergence)
    return {"divergence": divergence, "max_abs_diff": max_abs, "budgets64": b64, "tolerance64": tol64,
            "budgets32": b32, "tolerance32": tol32, "verdict": verdict}


class Sweep:
    """One `Runner` per gradient scale of a scenario; `worst` picks a pair's worst scale."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.runners = {s: Runner(scenario, scale=s) for s in scenario.scale_list()}

    def compare(self, a: RMSpropSpec, b: RMSpropSpec) -> dict[float, dict[str, Any]]:
        steps = self.scenario.steps
        return {s: compare(r.run(a), r.run(b), a, b, steps) for s, r in self.runners.items()}

    @staticmethod
    def worst(by_scale: dict[float, dict[str, Any]]) -> tuple[float, dict[str, Any]]:
        """The scale with the farthest verdict (then the largest divergence); degenerate scales only
        when every scale is."""
        live = {s: m for s, m in by_scale.items() if m["verdict"] != "degenerate"} or by_scale
        scale = max(live, key=lambda s: (rank(live[s]["verdict"]), live[s]["divergence"], live[s]["budgets64"]))
        return scale, live[scale]


__all__ = ["DEFAULT_SCALES", "GRADES", "STANDARD_SHAPES", "STANDARD_STEPS", "VERDICTS", "ParityError", "Runner",
           "Scenario", "Sweep", "Trajectory", "compare", "grade", "rank"]
