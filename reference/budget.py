"""The rounding budget: how far a correct implementation may drift from exact arithmetic.

Errors are measured in units of the budget ``u * B_t`` where u is the unit
roundoff of the arithmetic (2^-53 for float64, 2^-24 for float32) and

    B_t = |p_t| + sum_{s<=t} |p_s - p_{s-1}|

is the magnitude an RMSprop trajectory has moved through: every step rounds the
step it subtracts and the parameter it subtracts from, so a per-step relative
error of c*u in both accumulates to at most c*u*B_t. This is scale-free (it does
not care whether parameters are 1e-6 or 1e6) and does not blow up when a
parameter crosses zero, unlike an elementwise relative error.

`rounding_tolerance` derives the allowed ratio from the recursion (worst case,
errors aligned, first order in u):

* ``n_ops``: floating-point operations in the longest chain that computes the
  step; each contributes at most u of relative error to the step, so together at
  most ``n_ops * u * sum |step|``;
* ``parameter_roundings``: operations that round at the magnitude of the
  parameter itself every step (``p - step``; ``p - p*wd*lr``; ``p * (1 - lr*wd)``
  and its factor; the EMA blend). That is recursive summation (Higham, Accuracy
  and Stability, section 4.2): worst case ``k * u * sum_t |p_t| <= k * T * u * B_T``,
  linear in the number of steps T;
* the mean square v is a recursion ``v_t = rho*v_{t-1} + ...`` whose relative
  error obeys ``e_t <= rho*e_{t-1} + 3u``, so it carries up to
  ``3u * min(T, 1/(1-rho))``; the step sees half of it through the sqrt;
* the momentum buffer accumulates its own rounding with weight
  ``sum mu^k <= min(T, 1/(1-mu))`` (two roundings per step).

This bounds one implementation against exact arithmetic; two implementations
(framework vs reference) may err in opposite directions, hence ``implementations=2``.
It assumes a well-conditioned configuration; see `reference.exact.sensitivity`
for the ones where rounding is amplified and no such bound holds.
"""

from __future__ import annotations

import numpy as np

from .spec import RMSpropSpec

UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "bfloat16": 2.0**-8,
    "float16": 2.0**-11,
}


def budget_scale(trajectory: np.ndarray, params0: np.ndarray) -> np.ndarray:
    """``B_t = |p_t| + sum_{s<=t} |p_s - p_{s-1}|`` elementwise, for a ``(T, *shape)`` trajectory."""
    trajectory = np.asarray(trajectory, np.float64)
    prev = np.concatenate([np.asarray(params0, np.float64)[None], trajectory[:-1]])
    return np.abs(trajectory) + np.cumsum(np.abs(trajectory - prev), axis=0)


def budget_ratio(
    params: np.ndarray, reference: np.ndarray, params0: np.ndarray, unit_roundoff: float
) -> np.ndarray:
    """``|p - p_ref| / (u * B_t)`` per step (max over elements), computed from the reference."""
    scale = budget_scale(reference, params0) * unit_roundoff
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(np.asarray(params, np.float64) - reference) / scale
    ratio = np.where(np.abs(np.asarray(params, np.float64) - reference) == 0, 0.0, ratio)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # one side non-finite: infinitely wrong
    return ratio.reshape(len(ratio), -1).max(axis=1, initial=0.0)


def memory(coefficient: float, steps: int) -> float:
    """How many steps of rounding error a recursion ``s_t = c*s_{t-1} + ...`` carries:
    ``sum_{k<T} c^k <= min(T, 1/(1-c))``."""
    return min(steps, 1.0 / (1.0 - coefficient)) if coefficient < 1 else steps


def operation_count(spec: RMSpropSpec) -> int:
    """Roundings in the longest chain that computes one step (see the module docstring)."""
    n = 8  # g^2, rho*v, (1-rho)*g^2, +, +eps, sqrt, g/den, lr*u
    n += 4 if spec.centered else 0  # rho*m, (1-rho)*g, +, m^2 and the subtraction
    n += 3 if spec.momentum > 0 or spec.nesterov else 0  # mu*b, +, nesterov/lr product
    n += 2 if spec.weight_decay_mode != "none" and spec.weight_decay > 0 else 0
    n += 2 if spec.bias_correction else 0  # rho^n, division
    n += 3 if (spec.clipvalue or spec.clipnorm or spec.global_clipnorm) else 0
    n += 2 if spec.loss_scale or spec.accumulation_steps else 0
    n += 2 if spec.inverse_time_decay else 0
    return n


def parameter_roundings(spec: RMSpropSpec) -> int:
    """Roundings at the parameter's own magnitude per step (recursive summation)."""
    k = 1  # p - step
    if spec.weight_decay > 0 and spec.weight_decay_mode == "decoupled":
        k += 1  # p - p*wd*lr
    elif spec.weight_decay > 0 and spec.weight_decay_mode == "multiplicative":
        k += 2  # the factor 1 - lr*wd, then p * factor
    if spec.ema_momentum is not None:
        k += 3  # e*avg, (1-e)*p, their sum
    return k


def rounding_tolerance(spec: RMSpropSpec, steps: int, implementations: int = 1) -> float:
    """Allowed ``budget_ratio`` for a well-conditioned run of ``steps`` steps."""
    memory_v, memory_b = memory(spec.decay, steps), memory(spec.momentum, steps)
    per_impl = operation_count(spec) + parameter_roundings(spec) * steps + 1.5 * memory_v
    if spec.momentum > 0 or spec.nesterov:
        per_impl += 2.0 * memory_b
    return implementations * per_impl


# ------------------------------------------------------------ runs in a dtype
def hyperparameter_roundings(spec: RMSpropSpec, steps: int) -> float:
    """Extra budget units when the framework runs in a narrower dtype than the reference.

    Its hyperparameters are then rounded to the run dtype, the same way every step, so
    the errors align: lr, eps, ``1-rho`` and the weight decay each cost one u of the
    step; ``rho`` perturbs the v recursion by u per step, which its memory carries
    (``min(T, 1/(1-rho))``, half of it through the sqrt); the momentum coefficient
    perturbs the buffer the same way with its memory.
    """
    n = 4.0 + 0.5 * memory(spec.decay, steps)
    if spec.momentum > 0 or spec.nesterov:
        n += memory(spec.momentum, steps)
    return n


def run_tolerance(spec: RMSpropSpec, steps: int, dtype: str) -> float:
    """Allowed ``budget_ratio`` (in units of the run dtype's u) after ``steps`` steps of a
    framework running in ``dtype`` against the float64 reference.

    For float64 both sides round at the same u: ``implementations=2``. For a narrower
    dtype the framework's bound gains `hyperparameter_roundings`, and the reference's
    own float64 error is the same bound scaled by ``u_64 / u_dtype`` (negligible).
    Underflow in float16/bfloat16 (g^2 below 6e-8 in float16) is outside any such bound.
    """
    per_impl = rounding_tolerance(spec, steps)
    if dtype == "float64":
        return 2 * per_impl
    ratio = UNIT_ROUNDOFF["float64"] / UNIT_ROUNDOFF[dtype]
    return per_impl + hyperparameter_roundings(spec, steps) + per_impl * ratio


def state_tolerance(spec: RMSpropSpec, steps: int, dtype: str, kind: str) -> float:
    """Allowed budget ratio of an optimizer state tensor (``nu``, ``mu`` or ``trace``).

    A state recursion ``s_t = c*s_{t-1} + x_t`` makes a fresh error of a few u times
    ``max(|c*s_{t-1}|, |x_t|) <= 2*B_t`` each step (B_t: the state's own
    ``|s_t| + sum |s_t - s_{t-1}|``) and carries old errors with weight ``c^k``, so in
    budget units it is bounded by (fresh roundings) * ``min(T, 1/(1-c))``:

    * ``nu`` and ``mu``: g*g, rho*s, (1-rho)*x, the sum (x2 for the 2*B_t) plus any
      gradient preprocessing (clipping, loss scale, coupled weight decay) counted twice
      for the square, with rho's memory;
    * ``trace``: the step direction's error (`operation_count` plus half the v memory)
      and two roundings, with the momentum's memory.
    """
    memory_v, memory_b = memory(spec.decay, steps), memory(spec.momentum, steps)
    narrow = dtype != "float64"
    if kind in ("nu", "mu"):
        pre = 3 if (spec.clipvalue or spec.clipnorm or spec.global_clipnorm) else 0
        pre += 2 if spec.loss_scale or spec.accumulation_steps else 0
        pre += 2 if spec.weight_decay_mode == "coupled" and spec.weight_decay > 0 else 0
        per_impl = (8 + 2 * pre + (4 if narrow else 0)) * memory_v
    elif kind == "trace":
        per_impl = (operation_count(spec) + 1.5 * memory_v + 2 + (6 if narrow else 0)) * memory_b
    else:
        raise ValueError(f"unknown state kind {kind!r}")
    if not narrow:
        return 2 * per_impl
    return per_impl * (1 + UNIT_ROUNDOFF["float64"] / UNIT_ROUNDOFF[dtype])
