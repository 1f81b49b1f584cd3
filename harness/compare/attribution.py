"""Attribution of a pair's divergence to the knobs that differ: Shapley values that add up.

For a pair (A, B) whose effective knobs differ in the *players* ``K`` (knobs that must move
together, like weight decay and its mode, form one player), let ``d(S)`` be the divergence of
B from A with the knobs of ``S`` set to B's values, on the same stream and scale
(`harness.compare.parity.compare`), and ``v(S) = d(∅) - d(S)``: how much of the pair's divergence
matching ``S`` removes. A knob's Shapley value

    φ_i = Σ_{S ⊆ K∖{i}} |S|! (k-|S|-1)! / k!  ·  (v(S ∪ {i}) - v(S))

is its average contribution over every order of matching the knobs (exact from the 2^k
reference runs when k <= `MAX_EXACT`; averaged over `SAMPLES` seeded random orders beyond).
The values add up: ``Σ φ_i = v(K) = d(∅) - d(K)``, and ``d(K)``, what is left once every
listed knob matches, is the last row (``*``): rounding level when the list is complete. So
``share = φ_i / d(∅)`` over a pair's rows sums to exactly 100%.

Each row also keeps ``alone`` (the divergence knob i causes by itself, A against A with i
matched), ``first`` (``v({i})``, what matching it first removes) and ``interaction``
(``φ_i - v({i})``: what it adds or loses in combination). Pairwise Shapley interaction
indices ``I_ij = Σ_{S ⊆ K∖{i,j}} |S|!(k-|S|-2)!/(k-1)! · (v(S∪{i,j}) - v(S∪{i}) - v(S∪{j}) + v(S))``
go to the ``interactions`` table when at least `INTERACTION_FLOOR` of the divergence: eps
placement matters less once the lr is 10x smaller, and the pair shows that.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.compare.sweep import Runner, Scenario, compare
from reference import RMSpropSpec
from reference.translate import KNOBS

MAX_EXACT = 8
SAMPLES = 256
INTERACTION_FLOOR = 0.005

#: Readable names of the knobs in attribution tables.
KNOB_LABELS = {
    "effective_eps_placement": "eps placement",
    "initial_accumulator": "initial accumulator",
    "hyperparam_rounding": "float32 hyperparameters",
    "lr_placement": "lr placement",
    "centered_order": "centered order",
    "weight_decay_mode": "weight decay mode",
    "inverse_time_decay": "inverse-time decay",
    "bias_correction": "bias correction",
}
_SKIP = {"framework", "lr_schedule", "eps_placement", "legacy_eps_switch"}
_GROUPS = {"weight_decay": ("weight_decay", "weight_decay_mode"), "weight_decay_mode": ("weight_decay",
                                                                                        "weight_decay_mode")}


def label(knob: str) -> str:
    return KNOB_LABELS.get(knob, knob)


def differing_knobs(a: RMSpropSpec, b: RMSpropSpec) -> list[str]:
    """Knobs whose effective values differ (``-``: cannot matter in that configuration)."""
    ka, kb = a.effective_knobs(), b.effective_knobs()
    return [k for k in ka if k not in _SKIP and ka[k] != kb.get(k)]


def toggle(a: RMSpropSpec, b: RMSpropSpec, knobs: list[str] | tuple[str, ...]) -> RMSpropSpec:
    """``a`` with ``knobs`` set to ``b``'s values (eps placement as it really applies)."""
    changes: dict[str, Any] = {}
    for knob in knobs:
        if knob == "effective_eps_placement":
            changes |= {"eps_placement": b.effective_eps_placement, "legacy_eps_switch": False}
        elif knob == "ema_momentum":
            changes |= {k: getattr(b, k) for k in ("ema_momentum", "ema_overwrite_frequency", "ema_start")}
        else:
            changes[knob] = getattr(b, knob)
    if "eps_placement" not in changes and a.legacy_eps_switch:
        # the legacy switch moves eps when momentum changes; pin a's placement so one knob moves one thing
        changes |= {"eps_placement": a.effective_eps_placement, "legacy_eps_switch": False}
    return a.replace(**changes)


def _source(knob: str, settings: Mapping[str, Any]) -> str:
    """Why the knob differs: a framework ``default`` the settings left unset, a setting one
    framework ``rewrote``, or the framework's fixed ``semantics``."""
    if knob in KNOBS:
        return "rewritten" if knob in settings else "default"
    return "semantics"


def _show(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def players(a: RMSpropSpec, b: RMSpropSpec, groups: tuple[tuple[str, ...], ...] = ()) -> list[tuple[str, ...]]:
    """The differing knobs, grouped where they must move together."""
    knobs = differing_knobs(a, b)
    ka, kb = a.effective_knobs(), b.effective_knobs()
    groups = (*groups, ("weight_decay", "weight_decay_mode"))
    out, seen = [], set()
    for knob in knobs:
        if knob in seen or "-" in (ka[knob], kb[knob]):
            continue  # "-": it only matters together with another knob (lr placement without momentum)
        group = next((tuple(k for k in g if k in knobs) for g in groups if knob in g), (knob,))
        try:
            toggle(a, b, group)
        except ValueError:  # weight_decay > 0 with mode "none": the pair moves together
            group = _GROUPS.get(knob, group)
        seen.update(group)
        out.append(group)
    return out


def shapley(n: int, value) -> tuple[list[float], dict[tuple[int, int], float], bool]:
    """Shapley values of ``n`` players for the set function ``value(frozenset)``, and pairwise
    interaction indices; exact up to `MAX_EXACT` players, else sampled orders (no interactions)."""
    if n <= MAX_EXACT:
        fact = math.factorial
        phi = [0.0] * n
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for size in range(n):
                w = fact(size) * fact(n - size - 1) / fact(n)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    phi[i] += w * (value(s | {i}) - value(s))
        inter: dict[tuple[int, int], float] = {}
        for i, j in itertools.combinations(range(n), 2):
            others = [x for x in range(n) if x not in (i, j)]
            total = 0.0
            for size in range(n - 1):
                w = fact(size) * fact(n - size - 2) / fact(n - 1)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    total += w * (value(s | {i, j}) - value(s | {i}) - value(s | {j}) + value(s))
            inter[(i, j)] = total
        return phi, inter, True
    rng = np.random.default_rng(0)
    phi = [0.0] * n
    for _ in range(SAMPLES):
        prefix: frozenset[int] = frozenset()
        for i in rng.permutation(n):
            phi[i] += (value(prefix | {int(i)}) - value(prefix)) / SAMPLES
            prefix = prefix | {int(i)}
    return phi, {}, False


def attribute(scenario: Scenario, runner: Runner, name_a: str, a: RMSpropSpec, name_b: str, b: RMSpropSpec,
              with_: dict[str, Any], groups: tuple[tuple[str, ...], ...] = (),
              sources: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The attribution rows of one pair and its notable pairwise interactions (module docstring).
    ``groups`` are knobs toggled together (eps and its placement when eps was re-chosen for the
    other side of the sqrt); ``sources`` overrides why a knob differs."""
    steps = scenario.steps
    ta, tb = runner.run(a), runner.run(b)
    ka, kb = a.effective_knobs(), b.effective_knobs()
    group = players(a, b, groups)
    n = len(group)
    d_with = float(with_["divergence"])
    matched: dict[frozenset[int], tuple[RMSpropSpec, dict[str, Any]]] = {}

    def match(s: frozenset[int]) -> tuple[RMSpropSpec, dict[str, Any]]:
        if s not in matched:
            spec = toggle(a, b, [k for i in sorted(s) for k in group[i]])
            matched[s] = spec, compare(runner.run(spec), tb, spec, b, steps)
        return matched[s]

    def value(s: frozenset[int]) -> float:
        return d_with - match(s)[1]["divergence"] if s else 0.0

    finite = math.isfinite(d_with) and d_with > 0
    phi, inter, exact = shapley(n, value) if finite else ([math.nan] * n, {}, True)
    rows = []
    for i, knobs in enumerate(group):
        spec_i, without = match(frozenset({i}))
        alone = compare(ta, runner.run(spec_i), a, spec_i, steps)
        text = " + ".join(label(k) for k in knobs)
        source = (sources or {}).get(knobs[0]) or _source(knobs[0], scenario.settings)
        first = value(frozenset({i})) if finite else math.nan
        rows.append({"knob": "+".join(knobs), "label": f"default {text}" if source == "default" else text,
                     "source": source, "value_a": " ".join(_show(ka[k]) for k in knobs),
                     "value_b": " ".join(_show(kb[k]) for k in knobs), "without": without["divergence"],
                     "alone": alone["divergence"], "first": first, "shapley": phi[i],
                     "share": phi[i] / d_with if finite else math.nan, "interaction": phi[i] - first,
                     "without_verdict": without["verdict"]})
    if n:
        _, rest = match(frozenset(range(n)))
        residual = rest["divergence"]
        how = "" if exact else f" (Shapley values averaged over {SAMPLES} orders: more than {MAX_EXACT} knobs)"
        rows.append({"knob": "*", "label": f"all of the above{how}", "source": "", "value_a": "", "value_b": "",
                     "without": residual, "alone": d_with, "first": math.nan, "shapley": residual,
                     "share": residual / d_with if finite else math.nan, "interaction": math.nan,
                     "without_verdict": rest["verdict"]})
    for row in rows:
        row |= {"scenario": scenario.name, "a": name_a, "b": name_b, "with": d_with}
    pairs = [{"scenario": scenario.name, "a": name_a, "b": name_b, "knob_a": rows[i]["label"],
              "knob_b": rows[j]["label"], "interaction": v, "share": v / d_with}
             for (i, j), v in inter.items() if finite and abs(v) >= INTERACTION_FLOOR * d_with]
    return rows, pairs


__all__ = ["KNOB_LABELS", "attribute", "differing_knobs", "label", "players", "shapley", "toggle"]
