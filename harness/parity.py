"""Cross-framework parity: the same settings through every framework's own semantics, with attribution.

A *scenario* states framework-neutral settings once (``lr, decay, eps, momentum,
centered, weight_decay``; `reference.translate.knob_args` maps each to the
framework's own argument: ``alpha`` for torch, ``rho`` for Keras, ...). What a
scenario leaves unset is each framework's default, which is exactly how a model
ported by copying the settings one knows about behaves. No settings at all means
every framework's own defaults.

Each framework's semantics (its preset) runs as the float64 reference on one
gradient stream; the conformance suites verify those references against the real
frameworks, so this needs no framework installed. For a pair (A, B):

* ``divergence`` = ``max_t ||p_A - p_B||_2 / max(||p_A - p_0||_2, ||p_B - p_0||_2)``:
  the difference as a fraction of how far the parameters moved (1 = unrelated);
* ``budgets64`` / ``budgets32``: ``max |p_A - p_B| / (u * B_t)`` in float64 and
  float32 rounding budgets (`reference.budget`), against the float64 and float32
  tolerances of the two specs;
* ``verdict``: ``identical`` (bitwise), ``rounding`` (within float64 rounding: the
  same mathematics), ``below float32`` (a float32 run could not tell them apart:
  within the float32 tolerance) or ``diverges``.

**Attribution.** The knobs whose effective values differ (`RMSpropSpec.effective_knobs`)
are toggled one at a time in A to B's value, on the same stream: ``without`` is the
divergence of that A' from B (what is left once this knob matches), ``alone`` the
divergence of A' from A (this knob's own effect) and ``share = 1 - without/with`` the
fraction of the pair's divergence it removes. The effects need not add up (eps
placement matters less once the lr is 10x smaller), so every row is measured, not
apportioned. A last row toggles all of them: its ``without`` must be at rounding
level, which checks that the list of knobs is complete.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reference import RMSpropSpec, init, presets, update
from reference.budget import UNIT_ROUNDOFF, run_tolerance
from reference.translate import KNOBS, Unsupported, knob_args

from .streams import GradientStream, StreamSpec, initial_params

#: The presets a scenario compares unless it names its own: every framework a user configures
#: (the raw TF kernel has no defaults and ``spec`` is not a framework).
PARITY_PRESETS = ("torch", "keras", "keras_jax", "keras_torch", "tf_keras", "tf_keras_legacy", "tf1", "optax")
STANDARD_SHAPES = {"w": (32, 16), "b": (16,)}
STANDARD_STEPS = 200
VERDICTS = ("identical", "rounding", "below float32", "diverges")

#: Readable names of the knobs in attribution tables.
KNOB_LABELS = {
    "effective_eps_placement": "eps placement",
    "initial_accumulator": "initial accumulator",
    "hyperparam_rounding": "float32 hyperparameters",
    "lr_placement": "lr placement",
    "centered_order": "centered order",
    "weight_decay_mode": "weight decay mode",
    "inverse_time_decay": "inverse-time decay",
    "bias_correction": "bias correction",
}
_SKIP = {"framework", "lr_schedule", "eps_placement", "legacy_eps_switch"}
_GROUPS = {"weight_decay": ("weight_decay", "weight_decay_mode"), "weight_decay_mode": ("weight_decay",
                                                                                        "weight_decay_mode")}
PAIR_COLUMNS = ["scenario", "a", "b", "divergence", "max_abs_diff", "budgets64", "tolerance64", "budgets32",
                "tolerance32", "verdict", "differing"]
ATTRIBUTION_COLUMNS = ["scenario", "a", "b", "knob", "label", "source", "value_a", "value_b", "with", "without",
                       "alone", "share", "without_verdict"]


class ParityError(ValueError):
    """A scenario that cannot be compared (unknown preset, a setting no framework takes); one line."""


@dataclass(frozen=True)
class Scenario:
    """Settings stated once, compared across ``presets`` on one gradient stream."""

    name: str = "defaults"
    settings: Mapping[str, Any] = field(default_factory=dict)
    presets: tuple[str, ...] = PARITY_PRESETS
    stream: StreamSpec = field(default_factory=StreamSpec)
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: dict(STANDARD_SHAPES))
    steps: int = STANDARD_STEPS
    seed: int = 0
    lrs: tuple[float, ...] | None = None  # a schedule: the lr of steps 1..steps (replaces settings' lr)
    description: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.settings) - set(KNOBS))
        if unknown:
            raise ParityError(f"parity {self.name!r}: unknown setting {unknown[0]!r} (settings: {', '.join(KNOBS)})")
        bad = [p for p in self.presets if p not in presets.PRESETS or p == "spec"]
        if bad:
            raise ParityError(f"parity {self.name!r}: unknown preset {bad[0]!r} (known: {', '.join(PARITY_PRESETS)}, "
                              "tf_raw)")
        if len(self.presets) < 2:
            raise ParityError(f"parity {self.name!r}: needs at least two presets to compare")
        if self.lrs is not None and len(self.lrs) < self.steps:
            raise ParityError(f"parity {self.name!r}: {len(self.lrs)} scheduled lrs for {self.steps} steps")

    def args(self, preset: str) -> dict[str, Any]:
        """``preset``'s own constructor arguments for these settings (its defaults elsewhere)."""
        out = dict(presets.REQUIRED_DEFAULTS.get(preset, {}))
        for knob, value in self.settings.items():
            out |= knob_args(preset, knob, value)
        return out

    def specs(self) -> tuple[dict[str, RMSpropSpec], dict[str, str]]:
        """The spec of every preset that can take the settings, and why the others cannot."""
        specs, skipped = {}, {}
        for preset in self.presets:
            try:
                specs[preset] = presets.get(preset)(**self.args(preset))
            except Unsupported as exc:
                skipped[preset] = str(exc)
            except (TypeError, ValueError) as exc:
                raise ParityError(f"parity {self.name!r}: {preset}: {exc}") from None
        return specs, skipped


# ------------------------------------------------------------------ trajectories
@dataclass
class Trajectory:
    """Flattened float64 parameters at the recorded steps, with their budget scales ``B_t``."""

    params0: np.ndarray
    params: dict[int, np.ndarray]
    scale: dict[int, np.ndarray]


class Runner:
    """Runs specs on one scenario's stream; each distinct spec once (attribution reuses them)."""

    def __init__(self, scenario: Scenario, record: int = 24):
        self.scenario = scenario
        stream = GradientStream(scenario.stream, scenario.shapes)
        self.stream = stream
        recorded = stream.recorded_params()
        self.params0 = recorded if recorded is not None else initial_params(stream.shapes, scenario.seed)
        steps = scenario.steps
        self.record = set(np.unique(np.round(np.geomspace(1, steps, record)).astype(int)).tolist()) | {steps}
        self._cache: dict[RMSpropSpec, Trajectory] = {}
        self._grads: list[dict[str, np.ndarray]] | None = None

    def grads(self) -> list[dict[str, np.ndarray]]:
        # Every spec replays the same steps; small standard streams are kept once, in memory
        if self._grads is None:
            self._grads = list(self.stream.steps(self.scenario.steps, "float64"))
        return self._grads

    def run(self, spec: RMSpropSpec) -> Trajectory:
        if spec not in self._cache:
            self._cache[spec] = self._run(spec)
        return self._cache[spec]

    def _run(self, spec: RMSpropSpec) -> Trajectory:
        names = list(self.params0)
        params = dict(self.params0)
        state = init(spec, params)
        flat0 = _flat(params, names)
        prev, variation = flat0, np.zeros_like(flat0)
        out = Trajectory(flat0, {}, {})
        lrs = self.scenario.lrs
        for t, grads in enumerate(self.grads(), start=1):
            params, state = update(spec, state, params, grads, None if lrs is None else float(lrs[t - 1]))
            flat = _flat(params, names)
            with np.errstate(invalid="ignore"):
                step = np.abs(flat - prev)
            variation += np.where(np.isfinite(step), step, 0.0)
            prev = flat
            if t in self.record:
                out.params[t] = flat
                out.scale[t] = np.where(np.isfinite(flat), np.abs(flat), 0.0) + variation
        return out


def _flat(d: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(d[n], np.float64).ravel() for n in names])


def compare(a: Trajectory, b: Trajectory, spec_a: RMSpropSpec, spec_b: RMSpropSpec, steps: int) -> dict[str, Any]:
    """The pair metrics of the module docstring."""
    divergence = max_abs = b64 = b32 = 0.0
    for t in sorted(b.params):
        pa, pb = a.params[t], b.params[t]
        with np.errstate(all="ignore"):
            diff = np.abs(pa - pb)
        diff = np.where(np.isnan(diff) & (np.isnan(pa) == np.isnan(pb)), 0.0, diff)  # NaN on both sides: equal
        diff = np.where(np.isnan(diff), np.inf, diff)
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
    tol64 = max(run_tolerance(spec_a, steps, "float64"), run_tolerance(spec_b, steps, "float64"))
    tol32 = max(run_tolerance(spec_a, steps, "float32"), run_tolerance(spec_b, steps, "float32"))
    if max_abs == 0:
        verdict = "identical"
    elif b64 <= tol64:
        verdict = "rounding"
    elif b32 <= tol32:
        verdict = "below float32"
    else:
        verdict = "diverges"
    return {"divergence": divergence, "max_abs_diff": max_abs, "budgets64": b64, "tolerance64": tol64,
            "budgets32": b32, "tolerance32": tol32, "verdict": verdict}


# ------------------------------------------------------------------- attribution
def differing_knobs(a: RMSpropSpec, b: RMSpropSpec) -> list[str]:
    """Knobs whose effective values differ (``-``: cannot matter in that configuration)."""
    ka, kb = a.effective_knobs(), b.effective_knobs()
    return [k for k in ka if k not in _SKIP and ka[k] != kb.get(k)]


def toggle(a: RMSpropSpec, b: RMSpropSpec, knobs: list[str] | tuple[str, ...]) -> RMSpropSpec:
    """``a`` with ``knobs`` set to ``b``'s values (eps placement as it really applies)."""
    changes: dict[str, Any] = {}
    for knob in knobs:
        if knob == "effective_eps_placement":
            changes |= {"eps_placement": b.effective_eps_placement, "legacy_eps_switch": False}
        elif knob == "ema_momentum":
            changes |= {k: getattr(b, k) for k in ("ema_momentum", "ema_overwrite_frequency", "ema_start")}
        else:
            changes[knob] = getattr(b, knob)
    if "eps_placement" not in changes and a.legacy_eps_switch:
        # the legacy switch moves eps when momentum changes; pin a's placement so one knob moves one thing
        changes |= {"eps_placement": a.effective_eps_placement, "legacy_eps_switch": False}
    return a.replace(**changes)


def _source(knob: str, settings: Mapping[str, Any]) -> str:
    """Why the knob differs: a framework ``default`` the settings left unset, a setting one
    framework ``rewrote``, or the framework's fixed ``semantics``."""
    if knob in KNOBS:
        return "rewritten" if knob in settings else "default"
    return "semantics"


def _show(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def attribute(scenario: Scenario, runner: Runner, name_a: str, a: RMSpropSpec, name_b: str, b: RMSpropSpec,
              with_: dict[str, Any], groups: tuple[tuple[str, ...], ...] = (),
              sources: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The attribution rows of one pair (see the module docstring). ``groups`` are knobs toggled
    together (eps and its placement when eps was re-chosen for the other side of the sqrt);
    ``sources`` overrides why a knob differs (default: `_source` from the scenario's settings)."""
    steps = scenario.steps
    ta, tb = runner.run(a), runner.run(b)
    knobs = differing_knobs(a, b)
    ka, kb = a.effective_knobs(), b.effective_knobs()
    groups = (*groups, ("weight_decay", "weight_decay_mode"))
    rows, seen = [], set()
    for knob in knobs:
        if knob in seen or "-" in (ka[knob], kb[knob]):
            continue  # "-": it only matters together with another knob (lr placement without momentum)
        group = next((tuple(k for k in g if k in knobs) for g in groups if knob in g), (knob,))
        try:
            a_k = toggle(a, b, group)
        except ValueError:  # weight_decay > 0 with mode "none": the pair moves together
            group = _GROUPS.get(knob, group)
            a_k = toggle(a, b, group)
        seen.update(group)
        t_k = runner.run(a_k)
        without = compare(t_k, tb, a_k, b, steps)
        alone = compare(ta, t_k, a, a_k, steps)
        label = " + ".join(KNOB_LABELS.get(k, k) for k in group)
        source = (sources or {}).get(knob) or _source(knob, scenario.settings)
        rows.append({"knob": "+".join(group), "label": f"default {label}" if source == "default" else label,
                     "source": source, "value_a": " ".join(_show(ka[k]) for k in group),
                     "value_b": " ".join(_show(kb[k]) for k in group),
                     "without": without["divergence"], "alone": alone["divergence"],
                     "without_verdict": without["verdict"]})
    if knobs:
        everything = toggle(a, b, knobs)
        rest = compare(runner.run(everything), tb, everything, b, steps)
        rows.append({"knob": "*", "label": "all of the above", "source": "", "value_a": "", "value_b": "",
                     "without": rest["divergence"], "alone": with_["divergence"], "without_verdict": rest["verdict"]})
    for row in rows:
        w = with_["divergence"]
        row |= {"scenario": scenario.name, "a": name_a, "b": name_b, "with": w,
                "share": (1.0 - row["without"] / w) if w > 0 and math.isfinite(w) else 0.0}
    return [{c: r.get(c) for c in ATTRIBUTION_COLUMNS} for r in rows]


@dataclass
class ParityResult:
    pairs: pd.DataFrame
    attribution: pd.DataFrame
    skipped: dict[str, dict[str, str]]  # scenario -> preset -> why it cannot take the settings
    specs: dict[str, dict[str, RMSpropSpec]]  # scenario -> preset -> spec


def parity(scenarios: list[Scenario] | Scenario) -> ParityResult:
    """Pairwise divergence and attribution for every scenario (pairs in preset order, A before B)."""
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    pairs, attribution, skipped, all_specs = [], [], {}, {}
    for scenario in scenarios:
        specs, skipped[scenario.name] = scenario.specs()
        all_specs[scenario.name] = specs
        runner = Runner(scenario)
        for (na, a), (nb, b) in itertools.combinations(specs.items(), 2):
            metrics = compare(runner.run(a), runner.run(b), a, b, scenario.steps)
            differing = [KNOB_LABELS.get(k, k) for k in differing_knobs(a, b)]
            pairs.append({"scenario": scenario.name, "a": na, "b": nb, **metrics, "differing": ", ".join(differing)})
            if metrics["verdict"] != "identical" and differing:
                attribution.extend(attribute(scenario, runner, na, a, nb, b, metrics))
    return ParityResult(pd.DataFrame(pairs, columns=PAIR_COLUMNS),
                        pd.DataFrame(attribution, columns=ATTRIBUTION_COLUMNS), skipped, all_specs)
