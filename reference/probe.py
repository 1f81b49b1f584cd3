"""The designed probe of `reference.identify`: independent elements, each an experiment that isolates a knob,
and the closed forms and scans that read the knobs off what an implementation did with it.

A black box is ``factory(params0) -> step(grads, lr) -> params`` (float64 NumPy). The probe's learning rate
changes half-way: the two momentum forms (lr inside or after the buffer) agree exactly while it is constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .fitting import trajectories
from .spec import RMSpropSpec

Step = Callable[[np.ndarray, float], np.ndarray]  # (grads, lr) -> params after the step
Factory = Callable[[np.ndarray], Step]  # initial params -> a fresh optimizer's step

STEPS = 24
SWITCH = 12  # the lr changes after this many steps
LR = (1e-2, 3e-2)


@dataclass(frozen=True)
class Probe:
    """The designed experiment: initial parameters, gradients ``(T, K)`` and the lr of each step, with the
    element indices of each group."""

    params0: np.ndarray
    grads: np.ndarray
    lrs: np.ndarray
    groups: dict[str, list[int]] = field(default_factory=dict)


def probe(seed: int = 0) -> Probe:
    """Independent elements, each isolating knobs: large steady gradients (decay, momentum), gradients
    near 1 (the start of the square average), tiny ones (eps and its placement), biased and alternating
    signs (centered), a pulse that stops (momentum), parameters far from zero (weight decay), and noise."""
    rng = np.random.default_rng(seed)
    columns, p0, groups = [], [], {}

    def add(group: str, g: np.ndarray, p: float = 0.0) -> None:
        groups.setdefault(group, []).append(len(columns))
        columns.append(np.asarray(g, np.float64))
        p0.append(p)

    # "constant" gradients: the first step exactly G (the closed forms read it), then within 25% of G, so that
    # a centered form's v - m^2 stays a tenth of v instead of vanishing (a constant gradient's does, and its
    # rounding grows without bound relative to it: no implementation would agree with another there)
    ones = np.r_[1.0, 1.0 + 0.25 * rng.uniform(-1.0, 1.0, STEPS - 1)]
    for G in (1e3, 30.0):
        add("large", G * ones)
    for G in (0.3, 1.0, 3.0):
        add("unit", G * ones)
    for G in (1e-9, 1e-6, 1e-4, 1e-3, 1e-2):
        add("tiny", G * ones)
    add("alternating", np.where(np.arange(STEPS) % 2 == 0, 1.0, -1.0))
    add("biased", np.where(np.arange(STEPS) % 2 == 0, 1.0, -0.25))
    for G in (1.0, 0.05):
        add("pulse", np.where(np.arange(STEPS) < 3, G, 0.0))
    for p in (10.0, 100.0):
        add("decay", np.zeros(STEPS), p)
    add("decay_grad", 0.1 * ones, 10.0)
    add("decay_grad", np.where(np.arange(STEPS) % 2 == 0, 0.1, -0.1), 10.0)  # g and wd*p comparable, varying
    for _ in range(6):
        add("noise", rng.normal(size=STEPS) * 10.0 ** rng.uniform(-2, 1), float(rng.normal()))
    lrs = np.where(np.arange(STEPS) < SWITCH, LR[0], LR[1])
    return Probe(np.asarray(p0), np.stack(columns, axis=1), lrs, groups)


def observe(factory: Factory, pr: Probe) -> np.ndarray:
    """The black box's parameters after every step of the probe, ``(T, K)`` float64."""
    step = factory(pr.params0.copy())
    out = []
    for t in range(STEPS):
        out.append(np.asarray(step(pr.grads[t].copy(), float(pr.lrs[t])), np.float64).copy())
    return np.stack(out)


# ------------------------------------------------------------------------------------------- closed forms
def read_momentum(obs: np.ndarray, pr: Probe, decoupled: float = 0.0) -> float:
    """After the pulse stops (step 4 on), each step is ``mu`` times the one before (no gradient, no update of
    its own), as long as the lr is constant; less the decoupled decay's own ``lr*wd*p`` of each step. A step
    after the pulse that is no more than the rounding of the pulse's own: no momentum."""
    i = pr.groups["pulse"][0]
    p = np.concatenate([[pr.params0[i]], obs[:, i]])
    d = np.diff(p) + pr.lrs * decoupled * p[:-1]
    a, b = d[3], d[4]
    if not (np.isfinite(a) and np.isfinite(b)) or abs(a) < 1e-12 * abs(d[0]) or abs(b) < 1e-15 * abs(a):
        return 0.0
    return float(np.clip(b / a, 0.0, 0.999999))


def read_decay(obs: np.ndarray, pr: Probe) -> float:
    """A first decay: the first step of the largest gradient is ``lr*G/sqrt((1-rho)*G^2)`` (eps and a start of
    1 negligible there), so ``rho = 1 - (lr/|step|)^2``."""
    i = pr.groups["large"][0]
    step = abs(obs[0, i] - pr.params0[i])
    if not np.isfinite(step) or step == 0:
        return 0.9
    return float(np.clip(1 - (pr.lrs[0] / step) ** 2, 0.0, 0.999999))


def decay_modes(obs: np.ndarray, pr: Probe) -> list[tuple[str, float]]:
    """The weight decay modes (with a first weight decay) the elements far from zero with no gradient allow:
    decoupled decay moves them exactly in proportion to ``p`` (``p -= lr*wd*p``), coupled decay by a
    normalised step (``g = wd*p`` over its own root mean square, or over eps where eps dominates: then nearly
    in proportion), none not at all. Both decaying modes when the proportion is not clear-cut."""
    i, j = pr.groups["decay"]
    di, dj = obs[0, i] - pr.params0[i], obs[0, j] - pr.params0[j]
    if not (np.isfinite(di) and np.isfinite(dj)) or (abs(di) < 1e-12 and abs(dj) < 1e-12):
        return [("none", 0.0)]
    decoupled = ("decoupled", float(-di / (pr.lrs[0] * pr.params0[i])))
    coupled = ("coupled", 1e-2)  # its size shows with a gradient beside it
    ratio, exact = dj / di if di else math.inf, pr.params0[j] / pr.params0[i]
    # exact to the rounding of the two moves (each of a few ulps of p): coupled decay with a start of 1 or a
    # large eps is proportional to within (1 - rho)*(wd*p)^2, as little as 1e-8
    if abs(ratio - exact) < exact * (1e-10 + 8 * np.finfo(float).eps * abs(pr.params0[j] / dj)):
        return [decoupled]
    return [coupled] if abs(ratio) < 0.5 * exact else [coupled, decoupled]


def scan(base: RMSpropSpec, obs: np.ndarray, pr: Probe, group: str, steps: int, axes: dict[str, np.ndarray]
          ) -> list[dict[str, float]]:
    """The settings of ``axes`` (a grid, one batched evaluation) ordered by how well the first ``steps`` steps
    of the elements of ``group`` match, in relative error of each element's moves."""
    k = pr.groups[group]
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    values = {n: m.ravel() for n, m in zip(axes, mesh, strict=True)}
    ref = trajectories(base, values, pr.params0[k], pr.grads[:steps, k], pr.lrs[:steps])
    seen = obs[:steps, k]
    with np.errstate(all="ignore"):
        err = np.abs(ref - seen) / np.maximum(np.abs(seen - pr.params0[k]), 1e-300)
    err = np.where(np.isfinite(err), err, 1e30).reshape(len(ref), -1).sum(axis=1)
    order = np.argsort(err, kind="stable")
    return [{n: float(v[i]) for n, v in values.items()} for i in order]


__all__ = ["LR", "STEPS", "SWITCH", "Factory", "Probe", "Step", "decay_modes", "observe", "probe", "read_decay",
           "read_momentum", "scan"]
