"""Exact oracle: the `RMSpropSpec` recursion in mpmath at high precision, scalar by scalar.

Written independently of `reference.rmsprop` (scalar loops, no NumPy
arithmetic), so it checks the reference's logic as well as its rounding. Use it on
small problems: it is about 10^4 times slower than the float64 reference.

Two uses:

* ``run_exact`` bounds the float64 reference's own error: ``|p64 - p_exact|``
  divided by the rounding budget ``u * (|p| + sum |step|)`` (u = 2^-53) stays
  small for every well-conditioned configuration.
* ``sensitivity`` detects configurations where *any* two float64 implementations
  may disagree far beyond rounding: it re-runs the recursion with a random
  relative error of u injected into every stored intermediate (Monte Carlo
  arithmetic, Parker 1997) and reports the worst deviation in units of that
  budget. Example: optax ``centered=True, bias_correction=True`` has
  ``v^ - m^^2 = 0`` exactly at step 1, so a rounding error of u*g^2 stands
  alone against eps under the sqrt.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

from .budget import UNIT_ROUNDOFF, budget_ratio
from .rmsprop import Tree, _flatten, _leaves
from .spec import RMSpropSpec


class _Exact:
    """The recursion over flat lists of mpf; ``noise`` perturbs stored intermediates."""

    def __init__(self, spec: RMSpropSpec, params: list[list], noise: float = 0.0, seed: int = 0):
        self.s = spec
        self.noise = mpmath.mpf(noise)
        self.rng = random.Random(seed)
        self.p = params
        self.v = [[mpmath.mpf(spec.initial_accumulator)] * len(x) for x in params]
        self.m = [[mpmath.mpf(0)] * len(x) for x in params]
        self.b = [[mpmath.mpf(0)] * len(x) for x in params]
        self.acc = [[mpmath.mpf(0)] * len(x) for x in params]
        self.ema = [list(x) for x in params]
        self.count = 0
        self.updates = 0

    def _r(self, x):
        """x with a relative error of at most `noise` (the stored value of a float op)."""
        if not self.noise:
            return x
        return x * (1 + self.noise * mpmath.mpf(self.rng.uniform(-1.0, 1.0)))

    def hyper(self, name: str, value: float):
        return mpmath.mpf(self.s.rounded(name, value))

    def lr(self, given: float | None):
        s = self.s
        if given is None:
            given = s.lr_schedule(self.count) if s.lr_schedule is not None else s.lr
        lr = self.hyper("lr", given)
        if s.inverse_time_decay > 0:
            lr = lr / (1 + self.hyper("inverse_time_decay", s.inverse_time_decay) * self.count)
        return lr

    def step(self, grads: list[list], given_lr: float | None) -> None:
        s = self.s
        lr = self.lr(given_lr)
        k = s.accumulation_steps or 1
        g = [[-x if s.maximize else x for x in row] for row in grads]
        if s.loss_scale is not None:
            g = [[x / mpmath.mpf(s.loss_scale) for x in row] for row in g]
        do_update = True
        if s.accumulation_steps:
            if (self.count + 1) % k:
                self.acc = _map2(lambda a, x: a + x, self.acc, g)
                do_update = False
            else:
                g = _map2(lambda a, x: (x + a) / k, self.acc, g)
                self.acc = [[mpmath.mpf(0)] * len(r) for r in g]
        if do_update:
            self.updates += 1
            self._update(self._clip(g), lr)
        if s.ema_momentum is not None:
            it = self.count // k
            e = mpmath.mpf(0) if (s.ema_start == "first_update" and it == 0) else mpmath.mpf(s.ema_momentum)
            self.ema = _map2(lambda a, p: e * a + (1 - e) * p, self.ema, self.p)
            if s.ema_overwrite_frequency and (it + 1) % s.ema_overwrite_frequency == 0:
                self.p = [list(r) for r in self.ema]
        self.count += 1

    def _clip(self, g):
        s = self.s

        def r(x):  # the framework's float32 clip constants and factors, if it has them
            return self.hyper("clip", float(x)) if "clip" in s.hyperparam_rounding else x

        if s.clipvalue is not None:
            c = r(mpmath.mpf(s.clipvalue))
            g = [[min(max(x, -c), c) for x in row] for row in g]
        if s.clipnorm is not None:
            c = r(mpmath.mpf(s.clipnorm))
            out = []
            for row in g:
                norm = mpmath.sqrt(mpmath.fsum(x * x for x in row))
                out.append([x * c / r(max(norm, c)) for x in row])
            g = out
        if s.global_clipnorm is not None:
            c = r(mpmath.mpf(s.global_clipnorm))
            norm = mpmath.sqrt(mpmath.fsum(x * x for row in g for x in row))
            scale = r(c * r(min(1 / norm, r(1 / c))))
            g = [[x * scale for x in row] for row in g]
        return g

    def _update(self, g, lr) -> None:
        s = self.s
        rho = self.hyper("decay", s.decay)
        eps = self.hyper("eps", s.eps)
        mom = self.hyper("momentum", s.momentum)
        wd = self.hyper("weight_decay", s.weight_decay)
        inside = s.effective_eps_placement == "inside"
        correction = 1 - rho**self.updates if s.bias_correction else mpmath.mpf(1)
        has_trace = s.momentum > 0 or s.nesterov
        for i, row in enumerate(g):
            for j, gj in enumerate(row):
                p = self.p[i][j]
                if s.weight_decay_mode == "coupled":
                    gj = gj + wd * p
                elif s.weight_decay_mode == "decoupled":
                    p = p - p * wd * lr
                elif s.weight_decay_mode == "multiplicative":
                    p = p * self.hyper("wd_factor", 1 - float(lr) * float(wd)) \
                        if "wd_factor" in s.hyperparam_rounding else p * (1 - lr * wd)
                v = self._r(rho * self.v[i][j] + (1 - rho) * gj * gj)
                self.v[i][j] = v
                v_hat = self._r(v / correction)
                if s.centered:
                    m = self._r(rho * self.m[i][j] + (1 - rho) * gj)
                    self.m[i][j] = m
                    m2 = self._r((m / correction) ** 2)
                else:
                    m2 = mpmath.mpf(0)
                if not inside:
                    den = mpmath.sqrt(max(self._r(v_hat - m2), 0)) + eps
                elif s.centered_order == "sub_then_eps":
                    den = mpmath.sqrt(self._r(v_hat - m2) + eps)
                else:
                    den = mpmath.sqrt(self._r(v_hat + eps) - m2)
                u = gj / den
                if not has_trace:
                    step = lr * u
                elif s.lr_placement == "in_buffer":
                    b = mom * self.b[i][j] + lr * u
                    self.b[i][j] = b
                    step = lr * u + mom * b if s.nesterov else b
                else:
                    b = mom * self.b[i][j] + u
                    self.b[i][j] = b
                    step = lr * (u + mom * b) if s.nesterov else lr * b
                self.p[i][j] = p - step


def _map2(f, xs: list[list], ys: list[list]) -> list[list]:
    """Apply ``f`` elementwise over two lists of rows."""
    return [[f(x, y) for x, y in zip(rx, ry, strict=True)] for rx, ry in zip(xs, ys, strict=True)]


def _to_mp(arrays: Sequence[np.ndarray]) -> list[list]:
    return [[mpmath.mpf(float(x)) for x in np.ravel(a)] for a in arrays]


def _trajectory(spec, params0, grads, lrs, noise=0.0, seed=0, dps=60) -> list[list[np.ndarray]]:
    """Exact parameters after every step, as float64 leaves (rounded once, at the end)."""
    leaves, _ = _flatten(params0)
    shapes = [a.shape for a in leaves]
    lr_list = None if lrs is None else [float(x) for x in lrs]
    out: list[list[np.ndarray]] = []
    with mpmath.workdps(dps):
        oracle = _Exact(spec, _to_mp(leaves), noise=noise, seed=seed)
        for t, g in enumerate(_iter_grads(grads)):
            oracle.step(_to_mp(_leaves(g, leaves, "gradient")), None if lr_list is None else lr_list[t])
            out.append([np.array([float(x) for x in row]).reshape(shape)
                        for row, shape in zip(oracle.p, shapes, strict=True)])
    return out


def _iter_grads(grads) -> Iterable:
    return iter(grads) if not isinstance(grads, np.ndarray) else (g for g in grads)


def run_exact(
    spec: RMSpropSpec,
    params0: Tree,
    grads: np.ndarray | Iterable[Tree],
    lrs: Sequence[float] | None = None,
    dps: int = 60,
):
    """Like `run_reference` but evaluated with ``dps`` decimal digits, rounded to float64 last."""
    steps = _trajectory(spec, params0, grads, lrs, dps=dps)
    _, unflatten = _flatten(params0)
    n = len(_flatten(params0)[0])
    return unflatten([np.stack([s[i] for s in steps]) for i in range(n)])


@dataclass(frozen=True)
class Sensitivity:
    """Worst deviation under injected rounding, in units of u * budget scale."""

    ratio: float
    step: int  # 1-based step where the worst ratio occurs

    def ill_conditioned(self, threshold: float = 1e3) -> bool:
        """True when rounding alone can move results ``threshold`` budgets (default 1e3)."""
        return not self.ratio <= threshold


def sensitivity(
    spec: RMSpropSpec,
    params0: Tree,
    grads: np.ndarray | Iterable[Tree],
    lrs: Sequence[float] | None = None,
    trials: int = 3,
    seed: int = 0,
    unit_roundoff: float = UNIT_ROUNDOFF["float64"],
) -> Sensitivity:
    """How far rounding errors of size ``unit_roundoff`` can move the trajectory."""
    grads = list(_iter_grads(grads))
    leaves0, _ = _flatten(params0)
    exact = _trajectory(spec, params0, grads, lrs)
    worst, worst_step = 0.0, 0
    for trial in range(trials):
        noisy = _trajectory(spec, params0, grads, lrs, noise=unit_roundoff, seed=seed + trial)
        for i, p0 in enumerate(leaves0):
            per_step = budget_ratio(np.stack([s[i] for s in noisy]), np.stack([s[i] for s in exact]),
                                    p0, unit_roundoff)
            if per_step.size and per_step.max() > worst:
                worst, worst_step = float(per_step.max()), int(per_step.argmax()) + 1
    return Sensitivity(worst, worst_step)
