"""Fitting a spec's continuous knobs to an observed trajectory: the reference evaluated for many knob values
at once, and Levenberg-Marquardt with a Jacobian from one batched evaluation.

The reference's own ``update`` runs here, unchanged: its equations broadcast, so the knobs (decay, eps,
momentum, weight decay) are given as columns ``(B, 1)`` beside parameters ``(B, K)`` and ``B`` settings cost
about what one does (the trajectory is short; the time is Python's, per step, not per element).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .rmsprop import init, update
from .spec import RMSpropSpec


class _Columns:
    """``spec`` with some continuous knobs replaced by columns ``(B, 1)``: what `update` reads of a spec."""

    def __init__(self, spec: RMSpropSpec, columns: dict[str, np.ndarray]) -> None:
        self._spec = spec
        self.__dict__.update(columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spec, name)

    def rounded(self, name: str, value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.ndim:
            if name in self._spec.hyperparam_rounding:
                return value.astype(np.float32).astype(np.float64)
            return value
        return self._spec.rounded(name, value)


def trajectories(spec: RMSpropSpec, values: dict[str, Sequence[float]], params0: np.ndarray, grads: np.ndarray,
                 lrs: np.ndarray) -> np.ndarray:
    """The reference's parameters after every step for ``B`` settings of the continuous knobs at once:
    ``values[name]`` has ``B`` entries each (the others are ``spec``'s); returns ``(B, T, K)``."""
    columns = {n: np.asarray(v, np.float64).reshape(-1, 1) for n, v in values.items()}
    b = max((len(c) for c in columns.values()), default=1)
    batched = _Columns(spec, columns)
    params = np.broadcast_to(params0, (b, params0.size)).copy()
    state = init(spec, params)
    out = np.empty((b, len(grads), params0.size))
    for t in range(len(grads)):
        params, state = update(batched, state, params, np.broadcast_to(grads[t], params.shape), float(lrs[t]))
        out[:, t] = params
    return out


def residuals(spec: RMSpropSpec, values: dict[str, Sequence[float]], obs: np.ndarray, params0: np.ndarray,
              grads: np.ndarray, lrs: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(reference - observed) / scale`` for each setting, ``(B, T*K)``; both NaN is agreement, one
    non-finite side a large residual."""
    ref = trajectories(spec, values, params0, grads, lrs)
    with np.errstate(all="ignore"):
        r = (ref - obs) / scale
    r = np.where(np.isnan(ref) & np.isnan(obs), 0.0, r)
    return np.where(np.isfinite(r), r, 1e6).reshape(len(ref), -1)


def fitted_names(base: RMSpropSpec) -> list[str]:
    """The continuous knobs ``base``'s form uses: decay and eps; momentum and weight decay where it has them."""
    return ["decay", "eps"] + (["momentum"] if base.momentum > 0 else []) + \
        (["weight_decay"] if base.weight_decay_mode != "none" else [])


def grid(base: RMSpropSpec, obs: np.ndarray, params0: np.ndarray, grads: np.ndarray, lrs: np.ndarray,
         scale: np.ndarray, axes: dict[str, Sequence[float]]) -> tuple[RMSpropSpec, float]:
    """The best point of a grid over the knobs ``base`` uses (``axes[name]``: the values to try, on the fitted
    scale of `fit`; a knob without an axis keeps ``base``'s value, an axis ``base`` does not use is ignored),
    evaluated in one batch: ``(spec, cost)``."""
    names = [n for n in fitted_names(base) if n in axes]
    mesh = np.meshgrid(*[np.asarray(axes[n], np.float64) for n in names], indexing="ij")
    values = {n: _from_scale(n, m.ravel()) for n, m in zip(names, mesh, strict=True)}
    cost = 0.5 * np.sum(residuals(base, values, obs, params0, grads, lrs, scale) ** 2, axis=1)
    i = int(np.argmin(cost))
    return base.replace(**{n: float(v[i]) for n, v in values.items()}), float(cost[i])


def _from_scale(name: str, x: np.ndarray) -> np.ndarray:
    """A knob's values from the fitted scale: ``log10(1 - decay)``, momentum as is, the others ``log10``."""
    x = np.clip(x, -30.0, 3.0)
    if name == "decay":
        return np.clip(1 - 10.0**x, 0.0, 1.0)
    return np.clip(x, 0.0, 0.999999) if name == "momentum" else 10.0**x


def fit(base: RMSpropSpec, obs: np.ndarray, params0: np.ndarray, grads: np.ndarray, lrs: np.ndarray,
        scale: np.ndarray, start: dict[str, float], max_nfev: int = 400) -> tuple[RMSpropSpec, float]:
    """Least squares over the continuous knobs ``base`` uses (`fitted_names`) from ``start``: ``(spec, cost)``,
    the cost as SciPy's (half the sum of squares; infinite when the fit cannot start). Decay, eps and weight
    decay are fitted on a log scale (``log10(1 - decay)``)."""
    from scipy.optimize import least_squares

    names = fitted_names(base)

    def values_of(xs: np.ndarray) -> dict[str, np.ndarray]:  # xs: (B, n)
        return {n: _from_scale(n, xs[:, k]) for k, n in enumerate(names)}

    def fun(x: np.ndarray) -> np.ndarray:
        return residuals(base, values_of(x[None]), obs, params0, grads, lrs, scale)[0]

    def jac(x: np.ndarray) -> np.ndarray:  # forward differences, every column in one evaluation
        h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(x))
        xs = np.vstack([x, x + np.diag(h)])
        r = residuals(base, values_of(xs), obs, params0, grads, lrs, scale)
        return ((r[1:] - r[0]) / h[:, None]).T

    x0 = [math.log10(max(1 - start["decay"], 1e-12)), math.log10(max(start["eps"], 1e-30))]
    x0 += [start["momentum"]] if "momentum" in names else []
    x0 += [math.log10(max(start["weight_decay"] or 1e-2, 1e-12))] if "weight_decay" in names else []
    try:
        res = least_squares(fun, x0, jac=jac, method="lm", max_nfev=max_nfev, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    except (ValueError, FloatingPointError):
        return base, math.inf
    v = values_of(res.x[None])
    return base.replace(**{n: float(v[n][0]) for n in names}), float(res.cost)


__all__ = ["fit", "fitted_names", "grid", "residuals", "trajectories"]
