"""Divergence metrics: a framework's snapshot against the float64 reference at one step.

`reference_points` runs the reference once over the stream (`reference.trajectory`: the
parameters, the state and their rounding-budget scales ``B_t`` at the recorded steps) and
`divergence` measures a snapshot against such a point:

* ``max_abs_err``: ``max |x - x_ref|``;
* ``max_rel_err``: ``max |x - x_ref| / |x_ref|``;
* ``max_ulp`` / ``median_ulp``: ``|x - x_ref| / ulp(x_ref)`` with ulp taken in the run
  dtype (the spacing of that dtype at ``x_ref``; a correctly rounded result is <= 0.5);
* ``budget_ratio``: ``max |x - x_ref| / (u * B_t)``, u the run dtype's unit roundoff
  (see `reference.budget`);
* ``nonfinite_mismatch``: positions where exactly one side is NaN or inf.

Where both sides are non-finite and equal (both NaN, or the same inf) the error is
0; anywhere else a non-finite value on either side is an infinite error.

Under torch's coupled weight decay the state scales include the recursion on the summands'
magnitudes (see `reference.trajectory`): cancellation there is conditioning, not error.

A point also says whether the reference's parameters ``moved``: whether any element is
finite and differs from its initial value. A run in which they never do (all gradients
zero, or every value non-finite from the first step), or that ends with every value
non-finite on both sides, compares nothing: its status is ``degenerate``, never ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from harness.adapters.base import Snapshot
from harness.base import schema
from harness.base.schema import ULP_EDGES, ULP_LABELS
from harness.base.streams import GradientStream, cast
from reference import RMSpropSpec
from reference.budget import UNIT_ROUNDOFF, run_tolerance, state_tolerance
from reference.quantization import state_error_bounds
from reference.trajectory import Point as ReferencePoint
from reference.trajectory import record_steps, trajectory

#: (mantissa bits incl. the implicit one, minimum normal exponent) per run dtype
_FORMAT = {"float64": (53, -1022), "float32": (24, -126), "float16": (11, -14), "bfloat16": (8, -126)}

#: What `errors` measures: the registry's metrics less the tolerance (`harness.conformance.verdict` adds it).
METRICS = tuple(m for m in schema.PARAM_METRICS if m != "tolerance")

def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` at ``x`` (its subnormal spacing near zero)."""
    bits, emin = _FORMAT[dtype]
    x = np.abs(np.asarray(x, np.float64))
    with np.errstate(all="ignore"):
        _, e = np.frexp(x)
    exponent = np.where(x == 0, emin, np.maximum(e.astype(np.int64) - 1, emin))  # frexp(0) has e = 0
    return np.ldexp(1.0, exponent - (bits - 1))


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
    kept at the ``record`` steps with its budget scales.

    With a quantized state (``spec.state_quantization``) each scale also carries the derived quantization
    bound ``E`` (`reference.quantization`) as ``E / (tolerance * u)``: a ratio within the tolerance then
    means ``|x - x_ref| <= tolerance * u * B_t + E``, the rounding budget plus what 8 bits can cost."""
    start = {n: cast(p, dtype) for n, p in params0.items()}
    record = tuple(record)
    points = trajectory(spec, stream.steps(steps, dtype), start, record, lrs)
    if spec.state_quantization == "none":
        return points
    bounds = state_error_bounds(spec, stream.steps(steps, dtype), start, record, lrs)
    u = UNIT_ROUNDOFF[dtype]
    for t, point in points.items():
        E, D = bounds[t]
        tol, tol_nu = run_tolerance(spec, t, dtype), state_tolerance(spec, t, dtype, "nu")
        point.params_scale = {n: s + E[n] / (tol * u) for n, s in point.params_scale.items()}
        if "nu" in point.state_scale:
            point.state_scale["nu"] = {n: s + D[n] / (tol_nu * u) for n, s in point.state_scale["nu"].items()}
    return points


def _flat(d: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(d[n], np.float64).ravel() for n in names]) if names else np.empty(0)


_TINY = {"float16": float(np.finfo(np.float16).tiny)}  # the budget scale's floor (see `errors`)


def errors(x: np.ndarray, ref: np.ndarray, scale: np.ndarray, dtype: str) -> dict[str, float]:
    """The metrics of the module docstring for flat arrays ``x`` against ``ref``."""
    with np.errstate(all="ignore"):
        fx, fr = np.isfinite(x), np.isfinite(ref)
        same_nonfinite = ~fx & ~fr & ((np.isnan(x) & np.isnan(ref)) | (x == ref))
        abs_err = np.where(fx & fr, np.abs(x - ref), np.where(same_nonfinite, 0.0, np.inf))
        rel = np.where(abs_err == 0, 0.0, abs_err / np.abs(ref))
        ulps = np.where(abs_err == 0, 0.0, abs_err / ulp(np.where(fr, ref, 0.0), dtype))
        # gradual underflow in float16: below its smallest normal number (6.1e-5, inside ordinary training
        # values: a momentum buffer at a warm-up's lr) a rounding errs by up to half the subnormal spacing,
        # u * tiny, whatever the value; so the scale has that floor. Not for float32, bfloat16 and float64:
        # their normal range ends near 1e-38, where the edge suite reports underflow as a failure
        budget = np.where(abs_err == 0, 0.0, abs_err / (UNIT_ROUNDOFF[dtype] * (scale + _TINY.get(dtype, 0.0))))
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
        row |= {f"{kind}_{k}": v for k, v in m.items() if k in schema.STATE_METRICS}
    return row


__all__ = ["METRICS", "ULP_LABELS", "ReferencePoint", "divergence", "errors", "record_steps", "reference_points", "ulp",
           "ulp_histogram"]
