"""Divergence metrics: a framework's snapshot against the float64 reference at one step.

`reference_points` runs the reference once over the stream (memory O(parameters)
times the number of recorded steps) and keeps, at each recorded step, the
parameters, the optimizer state and their budget scales

    B_t = |x_t| + sum_{s<=t} |x_s - x_{s-1}|      (elementwise, for x = p, nu, mu, trace)

accumulated online. `divergence` then measures a snapshot against that point:

* ``max_abs_err``: ``max |x - x_ref|``;
* ``max_rel_err``: ``max |x - x_ref| / |x_ref|``;
* ``max_ulp`` / ``median_ulp``: ``|x - x_ref| / ulp(x_ref)`` with ulp taken in the run
  dtype (the spacing of that dtype at ``x_ref``; a correctly rounded result is <= 0.5);
* ``budget_ratio``: ``max |x - x_ref| / (u * B_t)``, u the run dtype's unit roundoff
  (see `reference.budget`);
* ``nonfinite_mismatch``: positions where exactly one side is NaN or inf.

Where both sides are non-finite and equal (both NaN, or the same inf) the error is
0; anywhere else a non-finite value on either side is an infinite error.

Coupled weight decay (torch) feeds ``g' = g + wd*p`` into every state; the two summands
can cancel, and then the rounding of that sum (and of ``wd*p``) is large relative to the
sum itself. That is the problem's conditioning, not an implementation error, so under
coupled decay the scale of every state also includes the same recursion run on the
magnitude of the summands, ``G = |g| + wd*|p|``:

* mean square: ``V_t = rho*V_{t-1} + (1-rho)*G^2``;
* mean gradient: ``M_t = rho*M_{t-1} + (1-rho)*G``;
* momentum buffer: ``T_t = mu*T_{t-1} + G/den_t`` (lr after the buffer) or ``+ lr_t*G/den_t``
  (lr in the buffer), ``den_t`` the reference's own denominator: the buffer sums ``g'/den``,
  whose rounding error is ``u*G/den``, not ``u*|g'|/den``.

A point also says whether the reference's parameters ``moved``: whether any element is
finite and differs from its initial value. A run in which they never do (all gradients
zero, or every value non-finite from the first step), or that ends with every value
non-finite on both sides, compares nothing: its status is ``degenerate``, never ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.adapters.base import STATE_KINDS, Snapshot
from harness.base.streams import GradientStream, cast
from reference import RMSpropSpec, init, learning_rate, update
from reference.budget import UNIT_ROUNDOFF
from reference.rmsprop import denominator

#: (mantissa bits incl. the implicit one, minimum normal exponent) per run dtype
_FORMAT = {"float64": (53, -1022), "float32": (24, -126), "float16": (11, -14), "bfloat16": (8, -126)}

METRICS = ("max_abs_err", "max_rel_err", "max_ulp", "median_ulp", "budget_ratio", "nonfinite_mismatch")

#: Upper edges of the ULP histogram bins after the first (exactly 0 ULP); a last bin holds the rest
#: (more than 2^20 ULP, or a position non-finite on one side only).
ULP_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 65536.0, 2.0**20)
ULP_LABELS = ("0", *(f"<={e:g}" if e < 1024 else f"<=2^{int(np.log2(e))}" for e in ULP_EDGES),
              f">2^{int(np.log2(ULP_EDGES[-1]))}")


def record_steps(steps: int, points: int = 16) -> tuple[int, ...]:
    """Log-spaced 1-based steps from 1 to ``steps``, always including the last."""
    if steps < 1:
        return ()
    logspaced = np.unique(np.round(np.geomspace(1, steps, max(points, 2))).astype(int))
    return tuple(sorted({*logspaced.tolist(), steps}))


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` at ``x`` (its subnormal spacing near zero)."""
    bits, emin = _FORMAT[dtype]
    x = np.abs(np.asarray(x, np.float64))
    with np.errstate(all="ignore"):
        _, e = np.frexp(x)
    exponent = np.where(x == 0, emin, np.maximum(e.astype(np.int64) - 1, emin))  # frexp(0) has e = 0
    return np.ldexp(1.0, exponent - (bits - 1))


@dataclass
class _Track:
    """Online ``B_t`` for a dict of arrays."""

    prev: dict[str, np.ndarray]
    variation: dict[str, np.ndarray] = field(default_factory=dict)

    def update(self, current: Mapping[str, np.ndarray]) -> None:
        for n, x in current.items():
            with np.errstate(invalid="ignore"):  # inf - inf
                step = np.abs(x - self.prev[n])
            step = np.where(np.isfinite(step), step, 0.0)  # a NaN step must not poison the scale
            self.variation[n] = self.variation.get(n, 0.0) + step
            self.prev[n] = x

    def scale(self) -> dict[str, np.ndarray]:
        return {n: np.where(np.isfinite(x), np.abs(x), 0.0) + self.variation.get(n, 0.0)
                for n, x in self.prev.items()}


@dataclass
class ReferencePoint:
    step: int
    params: dict[str, np.ndarray]
    params_scale: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]]
    state_scale: dict[str, dict[str, np.ndarray]]
    moved: bool = True  # some parameter is finite and differs from its initial value


def _state_dicts(spec_state, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for kind in STATE_KINDS:
        value = getattr(spec_state, kind)
        if value is not None:
            out[kind] = dict(zip(names, value, strict=True))
    return out


def reference_points(
    spec: RMSpropSpec,
    stream: GradientStream,
    params0: Mapping[str, np.ndarray],
    steps: int,
    dtype: str,
    record: Iterable[int],
    lrs: np.ndarray | None = None,
) -> dict[int, ReferencePoint]:
    """The float64 reference over ``stream`` (rounded to ``dtype``, as the framework sees it),
    kept at the ``record`` steps with its budget scales."""
    names = list(params0)
    params = {n: cast(p, dtype) for n, p in params0.items()}
    initial = dict(params)
    state = init(spec, params)
    record = set(record)
    params_track = _Track(dict(params))
    state_tracks = {k: _Track(dict(v)) for k, v in _state_dicts(state, names).items()}
    coupled = spec.weight_decay_mode == "coupled" and spec.weight_decay > 0
    rho, wd = spec.decay, spec.weight_decay
    mom = spec.rounded("momentum", spec.momentum)
    magnitude: dict[str, dict[str, np.ndarray]] = {"nu": {}, "mu": {}, "trace": {}}
    points = {}
    for t, grads in enumerate(stream.steps(steps, dtype), start=1):
        lr = None if lrs is None else float(lrs[t - 1])
        G = {}
        if coupled:  # the recursions on |g| + wd*|p|, p before this step's update
            for n in names:
                G[n] = np.abs(grads[n]) + wd * np.abs(params[n])
                magnitude["nu"][n] = rho * magnitude["nu"].get(n, 0.0) + (1 - rho) * G[n] * G[n]
                magnitude["mu"][n] = rho * magnitude["mu"].get(n, 0.0) + (1 - rho) * G[n]
        lr_t = learning_rate(spec, state.count, lr)
        params, state = update(spec, state, params, grads, lr)
        if coupled and state.trace is not None:
            with np.errstate(all="ignore"):
                for i, n in enumerate(names):
                    den = denominator(spec, state.nu[i], None if state.mu is None else state.mu[i], state.updates)
                    step = G[n] / den * (lr_t if spec.lr_placement == "in_buffer" else 1.0)
                    magnitude["trace"][n] = mom * magnitude["trace"].get(n, 0.0) + np.where(np.isfinite(step), step,
                                                                                            0.0)
        params_track.update(params)
        current = _state_dicts(state, names)
        for kind, values in current.items():
            state_tracks[kind].update(values)
        if t in record:
            state_scale = {k: tr.scale() for k, tr in state_tracks.items()}
            for kind, scale in state_scale.items():
                if coupled and magnitude.get(kind):
                    state_scale[kind] = {n: v + magnitude[kind][n] for n, v in scale.items()}
            with np.errstate(invalid="ignore"):
                moved = any(bool(np.any(np.isfinite(params[n]) & (params[n] != initial[n]))) for n in names)
            points[t] = ReferencePoint(t, dict(params), params_track.scale(), current, state_scale, moved)
    return points


def _flat(d: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(d[n], np.float64).ravel() for n in names]) if names else np.empty(0)


def errors(x: np.ndarray, ref: np.ndarray, scale: np.ndarray, dtype: str) -> dict[str, float]:
    """The metrics of the module docstring for flat arrays ``x`` against ``ref``."""
    with np.errstate(all="ignore"):
        fx, fr = np.isfinite(x), np.isfinite(ref)
        same_nonfinite = ~fx & ~fr & ((np.isnan(x) & np.isnan(ref)) | (x == ref))
        abs_err = np.where(fx & fr, np.abs(x - ref), np.where(same_nonfinite, 0.0, np.inf))
        rel = np.where(abs_err == 0, 0.0, abs_err / np.abs(ref))
        ulps = np.where(abs_err == 0, 0.0, abs_err / ulp(np.where(fr, ref, 0.0), dtype))
        budget = np.where(abs_err == 0, 0.0, abs_err / (UNIT_ROUNDOFF[dtype] * scale))
    rel = np.where(np.isnan(rel), np.inf, rel)
    budget = np.where(np.isnan(budget), np.inf, budget)
    empty = abs_err.size == 0
    return {
        "max_abs_err": 0.0 if empty else float(abs_err.max()),
        "max_rel_err": 0.0 if empty else float(rel.max()),
        "max_ulp": 0.0 if empty else float(ulps.max()),
        "median_ulp": 0.0 if empty else float(np.median(ulps)),
        "budget_ratio": 0.0 if empty else float(budget.max()),
        "nonfinite_mismatch": int(np.count_nonzero(fx != fr)),
    }


def ulp_histogram(snapshot: Snapshot, point: ReferencePoint, dtype: str) -> list[int]:
    """Per-element ``|x - x_ref| / ulp(x_ref)`` of the parameters, counted in the `ULP_LABELS` bins:
    how many elements are bitwise equal, within half an ulp (correctly rounded), ..."""
    names = list(point.params)
    x, ref = _flat(snapshot.params, names), _flat(point.params, names)
    with np.errstate(all="ignore"):
        same = (x == ref) | (np.isnan(x) & np.isnan(ref))
        ulps = np.abs(x - ref) / ulp(np.where(np.isfinite(ref), ref, 0.0), dtype)
    ulps = np.where(same, 0.0, np.where(np.isfinite(ulps), ulps, np.inf))
    # bin 0: exactly 0; bin i: (ULP_EDGES[i-2], ULP_EDGES[i-1]]; the last: above 2^20 or non-finite
    index = np.where(ulps == 0, 0, 1 + np.searchsorted(np.asarray(ULP_EDGES), ulps, side="left"))
    return np.bincount(index, minlength=len(ULP_LABELS)).astype(int).tolist()


def divergence(snapshot: Snapshot, point: ReferencePoint, dtype: str) -> dict[str, float]:
    """One row of metrics: parameters, then ``<kind>_<metric>`` for each state both sides have."""
    names = list(point.params)
    row = errors(_flat(snapshot.params, names), _flat(point.params, names), _flat(point.params_scale, names),
                 dtype)
    for kind, ref in point.state.items():
        got = snapshot.state.get(kind)
        if got is None or set(got) != set(ref):
            continue  # the framework does not expose it (or not for every tensor)
        m = errors(_flat(got, names), _flat(ref, names), _flat(point.state_scale[kind], names), dtype)
        row |= {f"{kind}_{k}": v for k, v in m.items() if k in ("max_abs_err", "max_rel_err", "budget_ratio",
                                                                 "nonfinite_mismatch")}
    return row
