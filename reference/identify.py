"""Which RMSprop is this? Designed probes, a closed-form start and a fit, on any step function.

An implementation is driven as a black box, ``factory(params0) -> step(grads, lr) -> params`` (float64
NumPy), on one designed probe: a tensor of independent elements, each an experiment whose gradients
separate one knob (see `probe`), under a learning rate that changes half-way (the two momentum forms agree
exactly while lr is constant). Then:

1. closed forms read what the probe isolates: ``maximize`` from the sign of the first step; the momentum
   coefficient from the pulse elements (after the gradient stops, each step is ``mu`` times the last); the
   weight decay mode from the elements far from zero with no gradient (decoupled decay moves them in
   proportion to ``p``, coupled decay by a normalised step whatever ``p``, none not at all);
2. every remaining discrete form (eps inside or outside the sqrt, centered and its order, the start of the
   square average, where lr enters the momentum buffer, nesterov) is fitted: least squares over the
   continuous knobs (decay, eps, momentum, weight decay) on the whole trajectory, residuals relative to
   each element's budget scale;
3. the best form is checked at rounding level: the residual in float64 rounding budgets against the
   a-priori tolerance (`reference.budget.rounding_tolerance`), with the learning rate exact or rounded to
   float32 (the one input the probe controls);
4. the result is named after the nearest implementation record: its preset with these knobs, or the one
   whose defaults differ in the fewest discrete knobs, with the differences listed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .budget import UNIT_ROUNDOFF, budget_scale, run_tolerance
from .identification import Identification, form, nearest
from .rmsprop import run_reference
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
    """Independent elements, each isolating knobs: large constant gradients (decay, momentum), gradients
    near 1 (the start of the square average), tiny ones (eps and its placement), biased and alternating
    signs (centered), a pulse that stops (momentum), parameters far from zero (weight decay), and noise."""
    rng = np.random.default_rng(seed)
    columns, p0, groups = [], [], {}

    def add(group: str, g: np.ndarray, p: float = 0.0) -> None:
        groups.setdefault(group, []).append(len(columns))
        columns.append(np.asarray(g, np.float64))
        p0.append(p)

    ones = np.ones(STEPS)
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
def _momentum(obs: np.ndarray, pr: Probe) -> float:
    """After the pulse stops (step 4 on), each step is ``mu`` times the one before (no gradient, no update of
    its own), as long as the lr is constant."""
    i = pr.groups["pulse"][0]
    d = np.diff(np.concatenate([[pr.params0[i]], obs[:, i]]))
    a, b = d[3], d[4]
    if not (np.isfinite(a) and np.isfinite(b)) or abs(a) < 1e-300 or abs(b) < 1e-15 * abs(a):
        return 0.0
    return float(np.clip(b / a, 0.0, 0.999999))


def _decay(obs: np.ndarray, pr: Probe) -> float:
    """A first decay: the first step of the largest gradient is ``lr*G/sqrt((1-rho)*G^2)`` (eps and a start of
    1 negligible there), so ``rho = 1 - (lr/|step|)^2``."""
    i = pr.groups["large"][0]
    step = abs(obs[0, i] - pr.params0[i])
    if not np.isfinite(step) or step == 0:
        return 0.9
    return float(np.clip(1 - (pr.lrs[0] / step) ** 2, 0.0, 0.999999))


def _decay_mode(obs: np.ndarray, pr: Probe) -> tuple[str, float]:
    """(weight decay mode, a first weight decay): the elements far from zero with no gradient."""
    i, j = pr.groups["decay"]
    di, dj = obs[0, i] - pr.params0[i], obs[0, j] - pr.params0[j]
    if not (np.isfinite(di) and np.isfinite(dj)) or (abs(di) < 1e-12 and abs(dj) < 1e-12):
        return "none", 0.0
    if abs(dj) > 5 * abs(di):  # proportional to p: p -= lr*wd*p
        return "decoupled", float(-di / (pr.lrs[0] * pr.params0[i]))
    return "coupled", 1e-2  # a normalised step whatever p; its size shows with a gradient beside it


# ------------------------------------------------------------------------------------------- the fit
def _residual(spec: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray) -> np.ndarray:
    ref = run_reference(spec, pr.params0, pr.grads, pr.lrs)
    with np.errstate(all="ignore"):
        r = (ref - obs) / scale
    both_nan = np.isnan(ref) & np.isnan(obs)
    r = np.where(both_nan, 0.0, r)
    return np.where(np.isfinite(r), r, 1e6).ravel()


def _values(spec: RMSpropSpec) -> dict[str, float]:
    return {"decay": spec.decay, "eps": spec.eps, "momentum": spec.momentum, "weight_decay": spec.weight_decay}


def _cost(spec: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray) -> float:
    return float(np.sum(_residual(spec, obs, pr, scale) ** 2))


def _snap(spec: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray) -> RMSpropSpec:
    """The fitted values replaced together by their shortest decimals (or those rounded to float32) that fit
    as well: 0.9, not 0.899999999996861, and no momentum rather than 4e-13, when the last digits are noise."""
    cost = _cost(spec, obs, pr, scale)
    bases = [spec]
    if 0 < spec.momentum < 1e-6:
        bases.insert(0, spec.replace(momentum=0.0, nesterov=False, lr_placement="in_buffer"))
    if 0 < spec.weight_decay < 1e-9:
        bases.insert(0, bases[0].replace(weight_decay=0.0, weight_decay_mode="none"))
    for digits in range(1, 13):
        for base in bases:
            short = {k: float(f"{v:.{digits}g}") for k, v in _values(base).items() if v}
            for trial_values in (short, {k: float(np.float32(v)) for k, v in short.items()}):
                trial = base.replace(**trial_values)
                if _cost(trial, obs, pr, scale) <= max(cost * 1.5, 1e-24):
                    return trial
    return spec


def _fit(base: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray, start: dict[str, Any],
         quick: bool = False) -> tuple[RMSpropSpec, float]:
    """Least squares over the continuous knobs ``base`` has (decay, eps, momentum, weight decay); ``quick``: one
    start and few evaluations, to rank the forms."""
    from scipy.optimize import least_squares

    names = ["decay", "eps"] + (["momentum"] if base.momentum > 0 else []) + \
        (["weight_decay"] if base.weight_decay_mode != "none" else [])

    def spec_of(x: np.ndarray) -> RMSpropSpec:
        x = np.clip(x, -30.0, 3.0)
        values = {"decay": float(np.clip(1 - 10.0 ** x[0], 0.0, 1.0)), "eps": 10.0 ** x[1]}
        for k, n in enumerate(names[2:], start=2):
            values[n] = float(np.clip(x[k], 0.0, 0.999999)) if n == "momentum" else 10.0 ** x[k]
        return base.replace(**values)

    best = None
    # at most nine starts: decay x eps, with momentum and weight decay varied alongside the decay
    decays, epss = (start["decay"], 0.99, 0.9), (start["eps"], 1e-8, 1e-3)
    mus, wds = (start["momentum"], 0.5, 0.9), (start["weight_decay"] or 1e-2, 1e-1, 1e-3)
    quick_starts = [(start["decay"], start["eps"], start["weight_decay"], start["momentum"])]
    if quick and "momentum" in names and start.get("momentum_unknown"):
        quick_starts.append((start["decay"], start["eps"], start["weight_decay"], 0.5))
    starts = quick_starts if quick else \
        [(decays[i], epss[j], wds[i], mus[(i + j) % 3]) for i in range(3) for j in range(3)]
    for decay0, eps0, wd0, mu0 in dict.fromkeys(starts):
        x0 = [math.log10(max(1 - decay0, 1e-12)), math.log10(max(eps0, 1e-30))]
        x0 += [mu0] if "momentum" in names else []
        x0 += [math.log10(max(wd0 or 1e-2, 1e-12))] if "weight_decay" in names else []
        try:
            res = least_squares(lambda x: _residual(spec_of(x), obs, pr, scale), x0, method="lm",
                                max_nfev=60 if quick else 400, xtol=1e-15, ftol=1e-15, gtol=1e-15)
        except (ValueError, FloatingPointError):
            continue
        if best is None or res.cost < best[1]:
            best = (spec_of(res.x), float(res.cost))
        if best[1] < 1e-20:
            break
    return best if best is not None else (base, math.inf)



def identify(factory: Factory | None = None, seed: int = 0,
             observer: Callable[[Probe], np.ndarray] | None = None, dtype: str = "float64",
             prefer: str | None = None) -> Identification:
    """The `RMSpropSpec` that reproduces the black box ``factory`` (module docstring); ``observer`` instead runs
    the probe some other way (a framework's worker) and returns the parameters after every step. ``dtype``:
    the arithmetic the implementation ran in (float32 for one that computes in float32), whose rounding budget
    judges the residual. ``prefer``: the implementation to name first when several take the semantics (the
    one the adapter claims)."""
    pr = probe(seed)
    obs = observer(pr) if observer is not None else observe(factory, pr)
    return fit_observed(pr, obs, dtype=dtype, prefer=prefer)


_MOMENTUM_FORMS = (("in_buffer", False), ("after_buffer", False), ("in_buffer", True), ("after_buffer", True))


def fit_observed(pr: Probe, obs: np.ndarray, *, dtype: str = "float64", prefer: str | None = None
                 ) -> Identification:
    """`identify` on an observed trajectory ``obs`` ``(T, K)`` of ``pr``'s gradients and lrs: with the
    designed probe's groups the closed forms decide maximize, momentum and the weight decay mode first; on
    any other data (a recording) every form is fitted."""
    scale = np.maximum(budget_scale(obs, pr.params0), 1e-300)
    first = obs[0] - pr.params0
    if pr.groups:
        i = pr.groups["large"][0]
        maximize = bool(np.isfinite(first[i]) and first[i] > 0)  # a positive gradient moved it up
        mode, wd = _decay_mode(obs, pr)
        modes = [(mode, wd)]
        mu = _momentum(obs, pr) if mode != "coupled" else 0.0
        decay0 = _decay(obs, pr)
    else:  # arbitrary gradients: the first step moves against the gradient unless it maximizes
        with np.errstate(all="ignore"):
            maximize = bool(np.nansum(first * pr.grads[0]) > 0)
        modes, mu, decay0 = [("none", 0.0), ("coupled", 1e-2), ("decoupled", 1e-2)], 0.0, 0.9
    start = {"decay": decay0, "eps": 1e-8, "momentum": mu or 0.9, "weight_decay": modes[0][1],
             "momentum_unknown": mu == 0}
    forms = []
    for (mode, wd), placement, centered, v0 in itertools.product(
            modes, ("outside", "inside"), ("no", "sub_then_eps", "eps_then_sub"), (0.0, 1.0)):
        if centered == "eps_then_sub" and placement == "outside":
            continue
        for lr_placement, nesterov in _MOMENTUM_FORMS if mu > 0 else (("in_buffer", False),):
            forms.append(RMSpropSpec(
                eps_placement=placement, centered=centered != "no",
                centered_order=centered if centered != "no" else "sub_then_eps", initial_accumulator=v0,
                momentum=mu, lr_placement=lr_placement, nesterov=nesterov, maximize=maximize,
                weight_decay=wd if mode != "none" else 0.0, weight_decay_mode=mode))
    if mu == 0 and (not pr.groups or modes[0][0] == "coupled"):
        # no probe, or g + wd*p keeps the pulse moving after it stops: momentum is fitted, not read
        forms += [f.replace(momentum=0.9, lr_placement=lp, nesterov=nv) for f in list(forms) for lp, nv in
                  _MOMENTUM_FORMS]
    forms += [f.replace(weight_decay_mode="multiplicative") for f in forms  # the same mathematics as decoupled,
              if f.weight_decay_mode == "decoupled" and pr.groups]      # rounded differently
    coarse = sorted((_fit(base, obs, pr, scale, start, quick=True) for base in forms), key=lambda sc: sc[1])
    # fitted fully: the best four, and the best of each eps placement and start (a quick fit may stop early
    # in the right form: eps is hard to see where the gradients dwarf it)
    chosen = list(coarse[:4])
    for key in itertools.product(("inside", "outside"), (0.0, 1.0)):
        best_of = next((c for c in coarse if (c[0].eps_placement, c[0].initial_accumulator) == key), None)
        if best_of is not None and best_of not in chosen:
            chosen.append(best_of)
    fitted = sorted((_fit(s, obs, pr, scale, {**start, **_values(s)}) for s, _ in chosen), key=lambda sc: sc[1])
    fitted += [c for c in coarse if c not in chosen]
    # the lr is the probe's own input: exact, or rounded to float32 by the implementation (refitted: the
    # continuous knobs would otherwise absorb the rounding)
    exact_lr = fitted[0][0]
    lr32, cost32 = _fit(exact_lr.replace(hyperparam_rounding={"lr"}), obs, pr, scale,
                        {**start, **_values(exact_lr)})
    best = _snap(lr32 if cost32 < fitted[0][1] * 0.5 else exact_lr, obs, pr, scale)
    if best.weight_decay_mode in ("decoupled", "multiplicative"):  # the same mathematics: the closer rounding
        other = best.replace(weight_decay_mode="multiplicative" if best.weight_decay_mode == "decoupled"
                             else "decoupled")
        best = min((best, other), key=lambda sp: _cost(sp, obs, pr, scale))
    ref = run_reference(best, pr.params0, pr.grads, pr.lrs)
    with np.errstate(all="ignore"):
        ratio = np.abs(ref - obs) / (UNIT_ROUNDOFF[dtype] * scale)
    ratio = np.where(np.isnan(ref) & np.isnan(obs), 0.0, ratio)
    budgets = float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.inf)))
    name, differences, also = nearest(best, prefer)
    return Identification(spec=best, budgets=budgets, tolerance=run_tolerance(best, STEPS, dtype), dtype=dtype,
                          nearest=name, differences=differences, also=also,
                          candidates=[(form(s), c) for s, c in fitted[:5]])



__all__ = ["Identification", "Probe", "identify", "observe", "probe"]
