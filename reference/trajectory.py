"""The float64 reference trajectory with its rounding-budget scales, kept at recorded steps.

One function, `trajectory`, for everything that compares against the reference: the conformance
metrics (a framework against its preset) and parity (preset against preset). At each recorded
step it keeps the parameters, optionally the optimizer state, and their budget scales

    B_t = |x_t| + sum_{s<=t} |x_s - x_{s-1}|      (elementwise, for x = p, nu, mu, trace)

accumulated online (memory O(parameters) times the number of recorded steps).

Coupled weight decay (torch) feeds ``g' = g + wd*p`` into every state; the two summands can
cancel, and then the rounding of that sum (and of ``wd*p``) is large relative to the sum itself.
That is the problem's conditioning, not an implementation error, so under coupled decay the
scale of every state also includes the same recursion run on the magnitude of the summands,
``G = |g| + wd*|p|``:

* mean square: ``V_t = rho*V_{t-1} + (1-rho)*G^2``;
* mean gradient: ``M_t = rho*M_{t-1} + (1-rho)*G``;
* momentum buffer: ``T_t = mu*T_{t-1} + G/den_t`` (lr after the buffer) or ``+ lr_t*G/den_t``
  (lr in the buffer), ``den_t`` the reference's own denominator: the buffer sums ``g'/den``,
  whose rounding error is ``u*G/den``, not ``u*|g'|/den``.

A point also says whether the parameters ``moved``: whether any element is finite and differs
from its initial value (a comparison where nothing moves tests nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .rmsprop import RMSpropState, denominator, init, learning_rate, update
from .spec import RMSpropSpec

#: The optimizer state a point keeps, by `RMSpropState` field: mean square, mean gradient, momentum buffer.
STATE_KINDS = ("nu", "mu", "trace")


def record_steps(steps: int, points: int = 16) -> tuple[int, ...]:
    """Log-spaced 1-based steps from 1 to ``steps``, always including the last."""
    if steps < 1:
        return ()
    logspaced = np.unique(np.round(np.geomspace(1, steps, max(points, 2))).astype(int))
    return tuple(sorted({*logspaced.tolist(), steps}))


@dataclass
class Point:
    """The reference at one recorded step, with the budget scale of every value."""

    step: int
    params: dict[str, np.ndarray]
    params_scale: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]]
    state_scale: dict[str, dict[str, np.ndarray]]
    moved: bool = True  # some parameter is finite and differs from its initial value


@dataclass
class _Track:
    """Online ``B_t`` for a dict of arrays."""

    prev: dict[str, np.ndarray]
    variation: dict[str, np.ndarray] = field(default_factory=dict)

    def update(self, current: Mapping[str, np.ndarray]) -> None:
        with np.errstate(invalid="ignore"):  # inf - inf
            for n, x in current.items():
                step = np.subtract(x, self.prev[n])  # in place from here: the same operations, fewer arrays
                np.abs(step, out=step)
                np.copyto(step, 0.0, where=~np.isfinite(step))  # a NaN step must not poison the scale
                total = self.variation.get(n)
                if total is None:
                    self.variation[n] = step
                else:
                    total += step
                self.prev[n] = x

    def scale(self) -> dict[str, np.ndarray]:
        with np.errstate(over="ignore"):
            return {n: np.where(np.isfinite(x), np.abs(x), 0.0) + self.variation.get(n, 0.0)
                    for n, x in self.prev.items()}


def _state_dicts(spec_state, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for kind in STATE_KINDS:
        value = getattr(spec_state, kind)
        if value is not None:
            out[kind] = dict(zip(names, value, strict=True))
    return out


def trajectory(
    spec: RMSpropSpec,
    grads: Iterable[Mapping[str, np.ndarray]],
    params0: Mapping[str, np.ndarray],
    record: Iterable[int],
    lrs: np.ndarray | None = None,
    *,
    state: bool = True,
    state0: RMSpropState | None = None,
) -> dict[int, Point]:
    """The reference from ``params0`` over ``grads`` (steps 1, 2, ...; the values both sides of a
    comparison see), kept at the ``record`` steps with its budget scales; ``state=False`` keeps the
    parameters alone (a point's ``state`` is then empty). ``state0`` starts from a given optimizer state
    (its ``count`` steps already taken; the golden vectors' non-initial start) instead of `init`'s."""
    names = list(params0)
    params = dict(params0)
    initial = dict(params)
    opt = init(spec, params) if state0 is None else state0
    record = set(record)
    params_track = _Track(dict(params))
    state_tracks = {k: _Track(dict(v)) for k, v in _state_dicts(opt, names).items()} if state else {}
    coupled = state and spec.weight_decay_mode == "coupled" and spec.weight_decay > 0
    rho, wd = spec.decay, spec.weight_decay
    mom = spec.rounded("momentum", spec.momentum)
    magnitude: dict[str, dict[str, np.ndarray]] = {"nu": {}, "mu": {}, "trace": {}}
    points = {}
    for t, g in enumerate(grads, start=1):
        lr = None if lrs is None else float(lrs[t - 1])
        G = {}
        if coupled:  # the recursions on |g| + wd*|p|, p before this step's update
            for n in names:
                G[n] = np.abs(g[n]) + wd * np.abs(params[n])
                magnitude["nu"][n] = rho * magnitude["nu"].get(n, 0.0) + (1 - rho) * G[n] * G[n]
                magnitude["mu"][n] = rho * magnitude["mu"].get(n, 0.0) + (1 - rho) * G[n]
        lr_t = learning_rate(spec, opt.count, lr)
        params, opt = update(spec, opt, params, g, lr)
        if coupled and opt.trace is not None:
            with np.errstate(all="ignore"):
                for i, n in enumerate(names):
                    den = denominator(spec, opt.nu[i], None if opt.mu is None else opt.mu[i], opt.updates)
                    step = G[n] / den * (lr_t if spec.lr_placement == "in_buffer" else 1.0)
                    magnitude["trace"][n] = mom * magnitude["trace"].get(n, 0.0) + np.where(np.isfinite(step), step,
                                                                                            0.0)
        params_track.update(params)
        current = _state_dicts(opt, names) if state else {}
        for kind, values in current.items():
            state_tracks[kind].update(values)
        if t in record:
            state_scale = {k: tr.scale() for k, tr in state_tracks.items()}
            for kind, scale in state_scale.items():
                if coupled and magnitude.get(kind):
                    state_scale[kind] = {n: v + magnitude[kind][n] for n, v in scale.items()}
            with np.errstate(invalid="ignore"):
                moved = any(bool(np.any(np.isfinite(params[n]) & (params[n] != initial[n]))) for n in names)
            points[t] = Point(step=t, params=dict(params), params_scale=params_track.scale(), state=current,
                              state_scale=state_scale, moved=moved)
    return points


__all__ = ["STATE_KINDS", "Point", "record_steps", "trajectory"]
