"""What the data decide about a fitted spec: its residuals in budget scales, its values snapped to the
shortest decimals (or their float32 roundings) that reproduce the data as well, and how precisely each value is
decided. ``pr`` is anything with the probe's ``params0``, ``grads`` and ``lrs`` (`reference.probe.Probe`).

A spec *reproduces* data when every residual is within ``tolerance * u`` of its element's budget scale;
``enough`` is half the square of that (the least-squares cost at which one residual alone would reach it).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .fitting import residuals
from .spec import RMSpropSpec


def cost_of(spec: RMSpropSpec, obs: np.ndarray, pr: Any, scale: np.ndarray) -> float:
    r = residuals(spec, {}, obs, pr.params0, pr.grads, pr.lrs, scale)
    return float(np.sum(r**2))


def knob_values(spec: RMSpropSpec) -> dict[str, float]:
    return {"decay": spec.decay, "eps": spec.eps, "momentum": spec.momentum, "weight_decay": spec.weight_decay}


def worst_residual(spec: RMSpropSpec, obs: np.ndarray, pr: Any, scale: np.ndarray,
           values: dict[str, Any] | None = None) -> np.ndarray:
    """The largest residual (in budget scales) of ``spec``, or of each setting of ``values``: a spec reproduces
    the data when it is within ``tolerance * u`` (the square root of twice `enough`)."""
    return np.max(np.abs(residuals(spec, values or {}, obs, pr.params0, pr.grads, pr.lrs, scale)), axis=1)


def snap(spec: RMSpropSpec, obs: np.ndarray, pr: Any, scale: np.ndarray, enough: float) -> RMSpropSpec:
    """The fitted values replaced by their shortest decimals, each as written or rounded to float32, that fit
    as well (all together: fitted knobs compensate each other's last digits): 0.9, not 0.899999999996861;
    float32(0.95) where the implementation keeps 0.95 in float32; no momentum or weight decay where the data
    do without. As well: reproducing the data (every residual within the tolerance) if the fit did, or no
    worse than half as much again."""
    allowed = math.sqrt(2 * enough)
    cost = cost_of(spec, obs, pr, scale)
    reproduces = bool(worst_residual(spec, obs, pr, scale)[0] <= allowed)

    def as_good(trial_cost: np.ndarray, trial_worst: np.ndarray) -> np.ndarray:
        return (trial_worst <= allowed) if reproduces else (trial_cost <= cost * 1.5)

    for trial in (spec.replace(momentum=0.0, nesterov=False, lr_placement="in_buffer"),
                  spec.replace(weight_decay=0.0, weight_decay_mode="none")):
        if trial != spec and as_good(np.array([cost_of(trial, obs, pr, scale)]),
                                     worst_residual(trial, obs, pr, scale))[0]:
            spec = trial  # the simpler explanation where the data cannot tell
    names = [n for n, v in knob_values(spec).items() if v]
    for digits in range(1, 13):
        short = {n: float(f"{getattr(spec, n):.{digits}g}") for n in names}
        combos = list(itertools.product(*[(short[n], float(np.float32(short[n]))) for n in names]))
        values = {n: [c[k] for c in combos] for k, n in enumerate(names)}
        r = residuals(spec, values, obs, pr.params0, pr.grads, pr.lrs, scale)
        good = as_good(np.sum(r**2, axis=1), np.max(np.abs(r), axis=1))
        if good.any():
            return spec.replace(**dict(zip(names, combos[int(np.argmax(good))], strict=True)))
    return spec


def settle(fitted: tuple[RMSpropSpec, float], obs: np.ndarray, pr: Any, scale: np.ndarray, enough: float
            ) -> tuple[RMSpropSpec, float]:
    """A fit close to rounding level with its values snapped (`_snap`): least squares in float64 stops some
    digits short of the exact values, the shortest decimals (or their float32 roundings) often are them. A fit
    whose every residual is within the tolerance has its cost reported as at most ``enough`` (reproduced: a sum
    of squares can exceed ``enough`` where many residuals are each within the tolerance)."""
    spec, cost = fitted
    allowed = math.sqrt(2 * enough)
    if cost <= enough * 1e8:
        snapped = snap(spec, obs, pr, scale, enough)
        snapped_cost = cost_of(snapped, obs, pr, scale) / 2  # SciPy's cost: half the sum of squares
        if worst_residual(snapped, obs, pr, scale)[0] <= allowed:
            return snapped, min(snapped_cost, enough)
        if snapped_cost < cost:
            spec, cost = snapped, snapped_cost
    if math.isfinite(cost) and worst_residual(spec, obs, pr, scale)[0] <= allowed:
        return spec, min(cost, enough)
    return spec, cost


def resolution(spec: RMSpropSpec, obs: np.ndarray, pr: Any, scale: np.ndarray, enough: float
                ) -> dict[str, float]:
    """How precisely the data decide each fitted value: the largest relative change, up or down, that still
    reproduces them within the tolerance (``enough``), the others held (a float32 factor ``1 - lr*wd`` decides
    the weight decay only to about ``u_32 / (lr*wd)``)."""
    out = {}
    deltas = 10.0 ** np.linspace(-12, -1, 111)
    for name, value in knob_values(spec).items():
        if not value:
            continue
        trial = np.r_[value * (1 + deltas), value * (1 - deltas)]
        if name in ("decay", "momentum"):
            trial = np.clip(trial, 0.0, 0.999999)
        worst = worst_residual(spec, obs, pr, scale, {name: trial})
        reach = 0.0
        for side in (worst[: len(deltas)], worst[len(deltas):]):  # the farther side (the interval is lopsided)
            within = side <= math.sqrt(2 * enough)
            reach = max(reach, float(deltas[-1] if within.all() else deltas[np.argmin(within)]) if within[0] else 0.0)
        out[name] = reach
    return out


__all__ = ["cost_of", "knob_values", "resolution", "settle", "snap", "worst_residual"]
