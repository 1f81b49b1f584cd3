"""Which RMSprop is this? The designed probe (`reference.probe`), scanned starts and fits, on any step function.

An implementation is driven as a black box, ``factory(params0) -> step(grads, lr) -> params`` (float64
NumPy), on one designed probe, or observed by an adapter's worker, or read from a recording. Then
(docs/identify.md has the whole method and the probe that decides each knob):

1. closed forms read what the probe isolates: maximize, the momentum coefficient, the weight decay mode;
2. every remaining discrete form gets a start from scans of the groups that isolate its knobs (`_rank`; a
   grid where there are no groups: a recording), the best are refined by quick least-squares fits and then
   fitted fully, in that order, until one reproduces the data to rounding level (`_search`);
3. a near miss is refitted with the learning rate or the decoupled factor rounded to float32 (`_roundings`),
   and bias-corrected forms are searched when nothing reproduces;
4. the values are snapped to the shortest decimals that reproduce as well, forms that differ in rounding only
   are settled, what the data cannot decide is said, and each value's resolution is measured
   (`reference.decided`); the result is named after the nearest implementation record.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import decided as data
from .budget import UNIT_ROUNDOFF, budget_scale, run_tolerance
from .fitting import fit, grid
from .identification import Identification, form, nearest, takes
from .probe import STEPS, Factory, Probe, decay_modes, observe, probe, read_decay, read_momentum, scan
from .rmsprop import run_reference
from .spec import RMSpropSpec


# ------------------------------------------------------------------------------------------- the fit
def _fit(base: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray, start: dict[str, Any],
         enough: float) -> tuple[RMSpropSpec, float]:
    """`fitting.fit` of ``base``'s continuous knobs from ``start``, then (unless it reproduces the data:
    ``enough``) from up to eight more starts, decay x eps with momentum and weight decay varied alongside the
    decay; each result settled (`_settle`)."""
    decays, epss = (start["decay"], 0.99, 0.9), (start["eps"], 1e-8, 1e-3)
    mus, wds = (start["momentum"], 0.5, 0.9), (start["weight_decay"] or 1e-2, 1e-1, 1e-3)
    starts = [{"decay": decays[i], "eps": epss[j], "weight_decay": wds[i], "momentum": mus[(i + j) % 3]}
              for i in range(3) for j in range(3)]
    best = (base, math.inf)
    for s in {tuple(sorted(s.items())): s for s in starts}.values():
        best = min(best, data.settle(fit(base, obs, pr.params0, pr.grads, pr.lrs, scale, s), obs, pr, scale, enough),
                   key=lambda sc: sc[1])
        if best[1] <= enough:
            return best
    if best[0].eps < 1e-20:
        # eps fitted away on its log scale (its pull vanishes with it) where the other knobs absorb its effect:
        # again from every decade of eps with the others as fitted
        for k in range(-12, -1):
            again = fit(base, obs, pr.params0, pr.grads, pr.lrs, scale, {**data.knob_values(best[0]), "eps": 10.0**k})
            best = min(best, data.settle(again, obs, pr, scale, enough), key=lambda sc: sc[1])
            if best[1] <= enough:
                break
    return best


def _rank_grid(base: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray) -> tuple[RMSpropSpec, float]:
    """A form's best point on a grid (`fitting.grid`), for data without the probe's groups (a recording: no
    element isolates a knob): ``1 - decay`` by fifths of a decade, eps by decades, momentum and weight decay at
    three values where the form has them; on 32 elements and the first 12 steps. Its cost on all the data."""
    k = np.unique(np.linspace(0, pr.params0.size - 1, min(32, pr.params0.size)).astype(int))
    t = min(12, len(pr.grads))
    axes = {"decay": np.arange(-3.0, -0.1, 0.2), "eps": np.arange(-12.0, 0.0), "momentum": [0.5, 0.9, 0.99],
            "weight_decay": [-3.0, -2.0, -1.0]}  # on the fitted scale: log10(1 - decay), log10 eps and wd
    spec, _ = grid(base, obs[:t, k], pr.params0[k], pr.grads[:t, k], pr.lrs[:t], scale[:t, k], axes)
    return spec, data.cost_of(spec, obs, pr, scale) / 2


def _rank(base: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray, start: dict[str, Any]
          ) -> tuple[RMSpropSpec, float]:
    """A form's start, read from the probe's groups by scans (`probe.scan`) in turn, and its cost there: the decay
    from the first step of the large gradients (eps and weight decay do not matter there; momentum only
    through nesterov's ``1 + mu``), eps from the first step of the tiny ones, and, where the closed forms could
    not read them, coupled weight decay and momentum from the first steps of the gradients beside a decaying
    parameter. A centered form's first step has two decays (``rho*(1 - rho)`` is symmetric): both are tried."""
    mus = np.array([start["momentum"]]) if not (start.get("momentum_unknown") and base.momentum) else \
        np.r_[start.get("momentum_read", 0.9), np.linspace(0.05, 0.95, 19), 0.99]
    decays = 1 - 10.0 ** np.linspace(-7.0, 0.0, 701)
    axes = {"decay": decays} | ({"momentum": mus[:1]} if base.momentum else {})  # the read momentum: a start
    # bias-corrected, a constant gradient's steps do not depend on the decay: the biased signs' do
    group, steps = ("biased", 4) if base.bias_correction else ("large", 1)
    by_decay = scan(base.replace(eps=0.0, weight_decay=0.0), obs, pr, group, steps, axes)
    candidates = [by_decay[0]]
    if base.centered:
        other = next((d for d in by_decay if (d["decay"] < 0.5) != (by_decay[0]["decay"] < 0.5)), None)
        candidates += [other] if other is not None else []
    # each refined a hundredfold about its grid point (with a start of 1, a decay off by a grid step would
    # hide eps from the next scan)
    candidates = [scan(base.replace(eps=0.0, weight_decay=0.0), obs, pr, group, steps, {
        **{k: np.array([v]) for k, v in c.items()},
        "decay": np.clip(1 - 10.0 ** np.linspace(-0.01, 0.01, 201) * (1 - c["decay"]), 0.0, 1.0)})[0]
        for c in candidates]
    best: tuple[RMSpropSpec, float] | None = None
    for found in candidates:
        spec = base.replace(**found)
        eps = np.r_[0.0, 10.0 ** np.linspace(-16, 0, 1601)]
        spec = spec.replace(**scan(spec, obs, pr, "tiny", 1, {"eps": eps})[0])
        if base.weight_decay_mode == "coupled" or len(mus) > 1:
            axes = {"momentum": mus} if base.momentum else {}
            if base.weight_decay_mode == "coupled":
                axes["weight_decay"] = 10.0 ** np.linspace(-7.0, 1.0, 161)
            spec = spec.replace(**scan(spec, obs, pr, "decay_grad", 6, axes)[0])
        cost = data.cost_of(spec, obs, pr, scale)
        if best is None or cost < best[1]:
            best = (spec, cost)
    assert best is not None
    return best


def _claimed_rounding(name: str) -> set[str]:
    """The hyperparameters implementation ``name`` rounds to float32 with its default arguments."""
    from . import implementations

    try:
        return set(implementations.get(name).defaults().hyperparam_rounding)
    except (KeyError, ValueError, TypeError):
        return set()


def _equivalent(spec: RMSpropSpec, obs: np.ndarray, pr: Probe, scale: np.ndarray,
                enough: Callable[[RMSpropSpec], float], prefer: str | None) -> tuple[RMSpropSpec, list[str]]:
    """Of the forms that compute the same mathematics on these data, the one closest to the observations (or,
    when both reproduce them, the one ``prefer`` takes), and (said, not guessed) the alternatives these data
    cannot tell apart: decoupled or multiplicative weight decay and the centered order with eps inside
    (rounding differences only), and the lr inside or outside the momentum buffer when the lr never changes
    (both forms then agree in exact arithmetic)."""
    options = [("weight_decay_mode", ("decoupled", "multiplicative"), None),
               ("centered_order", ("sub_then_eps", "eps_then_sub"), None),
               ("lr_placement", ("in_buffer", "after_buffer"), " (the learning rate never changes in these data)")]
    undecided = []
    for knob, pair, why in options:
        if getattr(spec, knob) not in pair or (knob == "centered_order" and not (
                spec.centered and spec.effective_eps_placement == "inside")) or (knob == "lr_placement" and (
                spec.momentum == 0 or np.ptp(pr.lrs) > 0)):
            continue
        other = spec.replace(**{knob: pair[1 - pair.index(getattr(spec, knob))]})
        costs = {s: data.cost_of(s, obs, pr, scale) for s in (spec, other)}
        spec, alternative = sorted(costs, key=costs.__getitem__)
        if data.worst_residual(alternative, obs, pr, scale)[0] <= math.sqrt(2 * enough(alternative)):
            if prefer is not None and takes(prefer, alternative) and not takes(prefer, spec):
                spec, alternative = alternative, spec
            if why is not None:
                undecided.append(f"{knob}={getattr(alternative, knob)!r} reproduces these data too{why}")
    return spec, undecided


def identify(fn: Callable[..., Any] | None = None, seed: int = 0,
             observer: Callable[[Probe], np.ndarray] | None = None, dtype: str | None = None,
             prefer: str | None = None, init: Callable[[np.ndarray], Any] | None = None) -> Identification:
    """The `RMSpropSpec` that reproduces the black box ``fn`` (module docstring), given as any of:

    * a step function ``step(params, grads, lr) -> params`` (its state its own: a closure, a bound method);
    * a step function with explicit state ``step(params, grads, lr, state) -> (params, state)``, the state
      starting as ``init(params0)`` (or None without ``init``);
    * a factory ``factory(params0) -> step(grads, lr) -> params``.

    Arrays are float64 NumPy. ``observer`` instead runs the probe some other way (a framework's worker) and
    returns the parameters after every step. ``dtype``: the arithmetic the implementation ran in, whose rounding
    budget judges the residual; by default float32 when every value it returned is a float32 number (a kernel
    that computes in float32), else float64. ``prefer``: the implementation to name first when several take
    the semantics (the one the adapter claims)."""
    pr = probe(seed)
    obs = observer(pr) if observer is not None else observe(as_factory(fn, init), pr)
    return fit_observed(pr, obs, dtype=dtype or arithmetic(obs), prefer=prefer)


def as_factory(fn: Callable[..., Any] | None, init: Callable[[np.ndarray], Any] | None = None) -> Factory:
    """``fn`` in the factory form `identify` drives, from its number of positional parameters: one (a factory),
    three (``step(params, grads, lr)``) or four (``step(params, grads, lr, state)``)."""
    import inspect

    if fn is None:
        raise TypeError("identify needs a step function, a factory or an observer")
    try:
        arity = len([p for p in inspect.signature(fn).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty])
    except (TypeError, ValueError):  # a builtin without a signature: taken as a factory
        arity = 1
    if arity == 1 and init is None:
        return fn
    if arity not in (3, 4):
        raise TypeError(f"identify: {getattr(fn, '__name__', fn)!r} takes {arity} arguments; give a factory "
                        "(params0), a step (params, grads, lr) or a step with state (params, grads, lr, state)")

    def factory(params0: np.ndarray) -> Callable[[np.ndarray, float], np.ndarray]:
        box = {"p": params0.copy(), "s": init(params0.copy()) if init is not None else None}

        def step(grads: np.ndarray, lr: float) -> np.ndarray:
            if arity == 3:
                box["p"] = np.asarray(fn(box["p"], grads, lr), np.float64)
            else:
                p, box["s"] = fn(box["p"], grads, lr, box["s"])
                box["p"] = np.asarray(p, np.float64)
            return box["p"]
        return step

    return factory


def arithmetic(obs: np.ndarray) -> str:
    """"float32" when every observed value is a float32 number (what a float32 implementation returns, widened),
    else "float64"."""
    with np.errstate(all="ignore"):
        narrow = np.array_equal(np.asarray(obs, np.float64).astype(np.float32).astype(np.float64), obs,
                                equal_nan=True)
    return "float32" if narrow else "float64"


_MOMENTUM_FORMS = (("in_buffer", False), ("after_buffer", False), ("in_buffer", True), ("after_buffer", True))


#: A fit this close (half the sum of squared residuals in budget scales: about 1e-7 relative per element) is a
#: rounding model away at most: a wrong form misses by 1e-4 or more
_NEAR = 1e-10


def _search(forms: list[RMSpropSpec], obs: np.ndarray, pr: Probe, scale: np.ndarray, start: dict[str, Any],
            enough: Callable[[RMSpropSpec], float]) -> list[tuple[RMSpropSpec, float]]:
    """The forms ranked by their scanned starts (`_rank`), the best ten refined by a quick fit and ranked
    again, then fitted fully in that order until one reproduces the data to rounding level: the best four and
    the best of each eps placement and start (eps is hard to see where the gradients dwarf it). Returns
    ``(spec, cost)``, best first: the fully fitted, then the rest as ranked."""
    ranked = sorted((_rank(base, obs, pr, scale, start) if pr.groups else _rank_grid(base, obs, pr, scale)
                     for base in forms), key=lambda sc: sc[1])
    # refined by a quick fit: the best ten, and the best of each eps placement, start and centering (a scan's
    # start can rank the right form low where no element isolates a knob, as in a recording)
    quick = list(ranked[:10])
    for key in itertools.product(("inside", "outside"), (0.0, 1.0), (False, True)):
        best_of = next((c for c in ranked if (c[0].eps_placement, c[0].initial_accumulator, c[0].centered) == key),
                       None)
        if best_of is not None and best_of not in quick:
            quick.append(best_of)
    coarse = sorted((fit(s, obs, pr.params0, pr.grads, pr.lrs, scale, {**start, **data.knob_values(s)}, max_nfev=60)
                     for s, _ in quick), key=lambda sc: sc[1]) + [r for r in ranked if r not in quick]
    chosen = list(coarse[:4])
    for key in itertools.product(("inside", "outside"), (0.0, 1.0)):
        best_of = next((c for c in coarse if (c[0].eps_placement, c[0].initial_accumulator) == key), None)
        if best_of is not None and best_of not in chosen:
            chosen.append(best_of)
    fitted = []
    for s, _ in chosen:
        fitted.append(_fit(s, obs, pr, scale, {**start, **data.knob_values(s)}, enough(s)))
        if enough(s) < fitted[-1][1] < _NEAR:  # this form, a float32 rounding away?
            fitted[-1] = _roundings(fitted[-1], obs, pr, scale, start, enough)
        if fitted[-1][1] <= enough(fitted[-1][0]):
            break
    fitted.sort(key=lambda sc: sc[1])
    return fitted + [c for c in coarse if c not in chosen]


def _roundings(fitted: tuple[RMSpropSpec, float], obs: np.ndarray, pr: Probe, scale: np.ndarray,
               start: dict[str, Any], enough: Callable[[RMSpropSpec], float]) -> tuple[RMSpropSpec, float]:
    """A fit that does not reproduce the data, refitted with the learning rate (the probe's own input) and the
    decoupled factor ``1 - lr*wd`` rounded to float32 (the continuous knobs cannot absorb those roundings):
    the first that reproduces them, else the closest."""
    best, cost = fitted
    decays = best.weight_decay_mode in ("decoupled", "multiplicative")
    if cost <= enough(best):
        return best, cost
    for rounding in [{"lr"}] + ([{"lr", "wd_factor"}, {"wd_factor"}] if decays else []):
        base = fitted[0].replace(hyperparam_rounding=rounding)
        if "wd_factor" in rounding:  # rounds the factor 1 - lr*wd of the multiplicative form
            base = base.replace(weight_decay_mode="multiplicative")
        trial, trial_cost = _fit(base, obs, pr, scale, {**start, **data.knob_values(base)}, enough(base))
        if trial_cost < cost * 0.5:
            best, cost = trial, trial_cost
        if cost <= enough(best):
            break
    return best, cost


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
        modes = decay_modes(obs, pr)
        # approximate under coupled decay (g = wd*p after the pulse): then a start
        mu_read = read_momentum(obs, pr, modes[-1][1] if modes[-1][0] == "decoupled" else 0.0)
        mu = mu_read if modes[0][0] != "coupled" else 0.0
        decay0 = read_decay(obs, pr)
    else:  # arbitrary gradients: the first step moves against the gradient unless it maximizes
        with np.errstate(all="ignore"):
            maximize = bool(np.nansum(first * pr.grads[0]) > 0)
        modes, mu, mu_read, decay0 = [("none", 0.0), ("coupled", 1e-2), ("decoupled", 1e-2)], 0.0, 0.0, 0.9
    start = {"decay": decay0, "eps": 1e-8, "momentum": mu or 0.9, "weight_decay": modes[-1][1],
             "momentum_read": mu_read or 0.9,
             "momentum_unknown": mu == 0}
    # at a constant lr the lr's side of the momentum buffer changes rounding only (`_equivalent` says so)
    momentum_forms = _MOMENTUM_FORMS if np.ptp(pr.lrs) > 0 else _MOMENTUM_FORMS[::2]
    forms = []
    for (mode, wd), placement, centered, v0 in itertools.product(
            modes, ("outside", "inside"), ("no", "sub_then_eps", "eps_then_sub"), (0.0, 1.0)):
        if centered == "eps_then_sub" and placement == "outside":
            continue
        for lr_placement, nesterov in momentum_forms if mu > 0 else (("in_buffer", False),):
            forms.append(RMSpropSpec(
                eps_placement=placement, centered=centered != "no",
                centered_order=centered if centered != "no" else "sub_then_eps", initial_accumulator=v0,
                momentum=mu, lr_placement=lr_placement, nesterov=nesterov, maximize=maximize,
                weight_decay=wd if mode != "none" else 0.0, weight_decay_mode=mode))
    if mu == 0 and (not pr.groups or modes[0][0] == "coupled"):
        # no probe, or g + wd*p keeps the pulse moving after it stops: momentum is fitted, not read
        forms += [f.replace(momentum=0.9, lr_placement=lp, nesterov=nv) for f in list(forms) for lp, nv in
                  momentum_forms]
    forms += [f.replace(weight_decay_mode="multiplicative") for f in forms  # the same mathematics as decoupled,
              if f.weight_decay_mode == "decoupled" and pr.groups]      # rounded differently
    if not pr.groups or abs(first[pr.groups["large"][0]]) < 1.05 * pr.lrs[0] * (1 + mu):  # nesterov: 1 + mu
        # a first step of lr whatever the gradient: bias-corrected (or a decay near 0: both are fitted)
        forms += [f.replace(bias_correction=True) for f in forms]
    u = UNIT_ROUNDOFF[dtype]

    def enough(spec: RMSpropSpec) -> float:  # half the sum of squares whose largest term is within tolerance
        return 0.5 * (run_tolerance(spec, STEPS, dtype) * u) ** 2

    fitted = _search(forms, obs, pr, scale, start, enough)
    best, cost = _roundings(fitted[0], obs, pr, scale, start, enough)
    if cost > enough(best) and not any(f.bias_correction for f in forms):
        # nothing reproduces: bias correction too (a centered one's first step does not show it)
        more = _search([f.replace(bias_correction=True) for f in forms], obs, pr, scale, start, enough)
        fitted = sorted(fitted + more, key=lambda sc: sc[1])
        best, cost = min((best, cost), _roundings(more[0], obs, pr, scale, start, enough), key=lambda sc: sc[1])
    decays = best.weight_decay_mode in ("decoupled", "multiplicative")
    if prefer is not None and cost <= enough(best):
        # of the rounding models that reproduce the data, the claimed implementation's (the data cannot choose)
        claimed = _claimed_rounding(prefer) & ({"lr", "wd_factor"} if decays else {"lr"})
        if claimed != set(best.hyperparam_rounding):
            base = best.replace(hyperparam_rounding=claimed)
            base = base.replace(weight_decay_mode="multiplicative") if "wd_factor" in claimed else base
            trial, trial_cost = _fit(base, obs, pr, scale, {**start, **data.knob_values(base)}, enough(base))
            if trial_cost <= enough(trial):
                best, cost = trial, trial_cost
    best = data.snap(best, obs, pr, scale, enough(best))
    best, undecided = _equivalent(best, obs, pr, scale, enough, prefer)
    ref = run_reference(best, pr.params0, pr.grads, pr.lrs)
    with np.errstate(all="ignore"):
        ratio = np.abs(ref - obs) / (UNIT_ROUNDOFF[dtype] * scale)
    ratio = np.where(np.isnan(ref) & np.isnan(obs), 0.0, ratio)
    budgets = float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.inf)))
    name, differences, also = nearest(best, prefer)
    return Identification(spec=best, budgets=budgets, tolerance=run_tolerance(best, STEPS, dtype), dtype=dtype,
                          nearest=name, differences=differences, also=also, undecided=undecided,
                          resolution=data.resolution(best, obs, pr, scale, enough(best)),
                          candidates=[(form(s), c) for s, c in fitted[:5]])



__all__ = ["STEPS", "Identification", "Probe", "arithmetic", "as_factory", "fit_observed", "identify", "observe",
           "probe"]
