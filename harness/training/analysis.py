"""From the runs of a closed-loop comparison to its tables: divergence between frameworks, its growth,
the rounding floor, and the split of the divergence into optimizer semantics, numerics and dynamics.

**Divergence** of two runs at a logged step: ``d_t = ||theta_a(t) - theta_b(t)||_2`` over every
parameter (canonical layout). **Growth**: the finite-time Lyapunov-style exponent
``lambda = (ln d_T - ln d_t0) / (T - t0)`` per step, from the first logged step where they differ:
positive, the dynamics amplify a difference (x e every 1/lambda steps); negative, they damp it.
**Floor** of a framework: the larger of two rounding-only differences, its native run against the
same run started one ulp away (`harness.training.worker.perturbed`) and against the float64 reference
of its own semantics on its own model (rounding injected at every step). A pair's floor is the sum of
its two frameworks' floors.

**Attribution** between the base framework T and another framework B, along the chain of runs
(`harness.training.plan`)::

    native T -> reference T[T] -> open T[B] -> reference T[B] -> reference B[B] -> native B
      T's optimizer rounding | semantics, open loop | amplification | model numerics | B's optimizer rounding

The differences telescope: the five loss differences sum exactly to the loss gap, and the five
parameter differences ``delta_i`` to ``D = theta_B - theta_T``; each term's part of the distance is
its projection ``<delta_i, D> / ||D||`` (the parts sum to ``||D||``; a negative part cancels others),
its size alone ``||delta_i||``. A pair is at **rounding level** when its optimizer terms (semantics,
open loop, and their amplification) are no larger than its rounding-only terms together; the
``floor`` column is then that rounding part (else the two frameworks' floors summed).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.training.plan import FLOOR_SEED, Plan
from harness.training.worker import perturbed
from harness.training.workloads import flatten, log_steps

TERMS = (
    ("optimizer rounding ({a})", "numerics", ("native", "a", "a"), ("reference", "a", "a")),
    ("optimizer semantics, open loop", "optimizer", ("reference", "a", "a"), ("open", "a", "b")),
    ("amplification by the dynamics", "dynamics", ("open", "a", "b"), ("reference", "a", "b")),
    ("forward/backward numerics ({a} -> {b} model)", "numerics", ("reference", "a", "b"), ("reference", "b", "b")),
    ("optimizer rounding ({b})", "numerics", ("reference", "b", "b"), ("native", "b", "b")),
)


@dataclass
class Result:
    """One run's outcome as the worker sent it (arrays empty unless done)."""

    status: str
    reason: str = ""
    losses: np.ndarray = field(default_factory=lambda: np.empty(0))
    norms: np.ndarray = field(default_factory=lambda: np.empty(0))
    evals: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    params: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    @property
    def done(self) -> bool:
        return self.status == "done"


def _key(plan: Plan, dtype: str) -> dict[str, Any]:
    return {"workload": plan.workload.name, "settings": plan.settings, "dtype": dtype}


def run_rows(plan: Plan, dtype: str, steps: int, results: dict[str, Result]) -> tuple[list[dict], list[dict]]:
    """``training_runs`` rows (one per run) and ``training`` rows (one per step of each run that finished)."""
    runs, rows = [], []
    logged = log_steps(steps)
    master = {n: np.asarray(p, dtype).astype(np.float64) for n, p in plan.workload.init().items()}
    for trainer, skipped in plan.skipped.items():
        runs.append({**_key(plan, dtype), "trainer": trainer, "run": "native", "optimizer": trainer,
                     "status": "skipped", "reason": skipped, "args": "{}"})
    for trainer, planned in plan.runs.items():
        for r in planned:
            res = results.get(r.id, Result("error", "no result"))
            row = {**_key(plan, dtype), "trainer": trainer, "run": r.kind, "optimizer": r.optimizer,
                   "status": res.status, "reason": res.reason,
                   "args": json.dumps(r.args, sort_keys=True, default=str)}
            if res.done:
                start = perturbed(master, dtype, FLOOR_SEED) if r.kind == "floor" else master
                row["init_exact"] = bool(np.array_equal(res.params[0], flatten(start)))
                row["final_loss"], row["final_accuracy"] = (float(v) for v in res.evals[-1])
                row["nonfinite"] = bool(not np.all(np.isfinite(res.params[-1])))
                for t in range(steps + 1):
                    k = logged.index(t) if t in logged else None
                    rows.append({**_key(plan, dtype), "trainer": trainer, "run": r.kind, "optimizer": r.optimizer,
                                 "step": t, "loss": float(res.losses[t - 1]) if t else math.nan,
                                 "grad_norm": float(res.norms[t - 1]) if t else math.nan,
                                 "eval_loss": float(res.evals[k, 0]) if k is not None else math.nan,
                                 "accuracy": float(res.evals[k, 1]) if k is not None else math.nan,
                                 "params": res.params[k].tolist() if k is not None else None})
            runs.append(row)
    return runs, rows


def growth(steps: list[int], d: np.ndarray) -> float:
    """The finite-time exponent per step from the first logged step t0 >= 1 with d > 0 to the last."""
    positive = [i for i, t in enumerate(steps) if t >= 1 and d[i] > 0 and np.isfinite(d[i])]
    if not positive or steps[positive[0]] == steps[-1] or not (d[-1] > 0 and np.isfinite(d[-1])):
        return math.nan
    i0 = positive[0]
    return float((math.log(d[-1]) - math.log(d[i0])) / (steps[-1] - steps[i0]))


def _distance(a: Result, b: Result) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sqrt(np.sum((a.params - b.params) ** 2, axis=1))


def verdict(distance: float, terms: list[dict] | None, moved: bool, finite: bool) -> str:
    """``rounding level`` when the optimizer-semantics terms of the attribution (open loop and its
    amplification, each alone) are no larger than its rounding-only terms together: the optimizers
    differ by less than the pair's own rounding noise. A pair without attribution (neither side the
    base) is ``unattributed`` unless identical."""
    if not finite:
        return "nonfinite"
    if not moved:
        return "degenerate"
    if distance == 0:
        return "identical"
    if not terms:
        return "unattributed"
    return "rounding level" if semantic_part(terms) <= rounding_part(terms) else "diverged"


def semantic_part(terms: list[dict]) -> float:
    return sum(t["distance_alone"] for t in terms if t["category"] != "numerics")


def rounding_part(terms: list[dict]) -> float:
    return sum(t["distance_alone"] for t in terms if t["category"] == "numerics")


def pair_rows(plan: Plan, dtype: str, steps: int, results: dict[str, Result], attribution: list[dict]
              ) -> tuple[list[dict], list[dict]]:
    """``training_pairs`` (one row per pair of frameworks, at the last step) and ``training_divergence``
    (every logged step of each pair and each framework's floor)."""
    logged = log_steps(steps)
    native = {t: results.get(f"{t}|native|{t}") for t in plan.runs}
    native = {t: r for t, r in native.items() if r is not None and r.done}
    floors: dict[str, np.ndarray] = {}
    curves: list[dict] = []
    for t, r in native.items():
        others = [results.get(f"{t}|{kind}|{t}") for kind in ("floor", "reference")]
        others = [o for o in others if o is not None and o.done]
        if others:
            floors[t] = np.max([_distance(r, o) for o in others], axis=0)
            curves += [{**_key(plan, dtype), "a": t, "b": f"{t} (rounding floor)", "kind": "floor", "step": s,
                        "distance": float(floors[t][i])} for i, s in enumerate(logged)]
    pairs = []
    for a, b in itertools.combinations(native, 2):
        ra, rb = native[a], native[b]
        d = _distance(ra, rb)
        curves += [{**_key(plan, dtype), "a": a, "b": b, "kind": "pair", "step": s, "distance": float(d[i])}
                   for i, s in enumerate(logged)]
        terms = [t for t in attribution if {t["a"], t["b"]} == {a, b}]
        floor = rounding_part(terms) if terms else (
            sum(float(floors[t][-1]) for t in (a, b)) if a in floors and b in floors else math.nan)
        norm = float(np.linalg.norm(ra.params[-1]))
        finite = bool(np.all(np.isfinite(ra.params[-1])) and np.all(np.isfinite(rb.params[-1])))
        moved = bool(np.any(ra.params[-1] != ra.params[0]) and np.any(rb.params[-1] != rb.params[0]))
        la, lb = float(ra.evals[-1, 0]), float(rb.evals[-1, 0])
        pairs.append({**_key(plan, dtype), "a": a, "b": b, "steps": steps, "loss_a": la, "loss_b": lb,
                      "loss_gap": lb - la, "accuracy_a": float(ra.evals[-1, 1]), "accuracy_b": float(rb.evals[-1, 1]),
                      "distance": float(d[-1]), "relative": float(d[-1]) / norm if norm else math.nan,
                      "floor": floor, "floor_ratio": float(d[-1]) / floor if floor > 0 else math.nan,
                      "growth": growth(logged, d), "floor_growth": max(
                          (growth(logged, floors[t]) for t in (a, b) if t in floors), default=math.nan),
                      "verdict": verdict(float(d[-1]), terms, moved, finite)})
    return pairs, curves


def attribution_rows(plan: Plan, dtype: str, results: dict[str, Result]) -> list[dict]:
    """``training_attribution``: the chain from the base to every other framework (module docstring)."""
    out = []
    base = plan.base
    for other in plan.runs:
        if other == base:
            continue
        names = {"a": base, "b": other}

        def run(kind: str, model: str, semantics: str, names: dict = names) -> Result | None:
            r = results.get(f"{names[model]}|{kind}|{names[semantics]}")
            return r if r is not None and r.done else None

        chain = [(run(*src), run(*dst)) for _, _, src, dst in TERMS]
        if any(x is None or y is None for x, y in chain):
            continue
        first, last = chain[0][0], chain[-1][1]
        total = last.params[-1] - first.params[-1]
        norm = float(np.linalg.norm(total))
        gap = float(last.evals[-1, 0] - first.evals[-1, 0])
        for (label, category, _, _), (x, y) in zip(TERMS, chain, strict=True):
            delta = y.params[-1] - x.params[-1]
            part = float(delta @ total) / norm if norm > 0 else math.nan
            loss_delta = float(y.evals[-1, 0] - x.evals[-1, 0])
            out.append({**_key(plan, dtype), "a": base, "b": other, "term": label.format(a=base, b=other),
                        "category": category, "loss_delta": loss_delta,
                        "loss_share": loss_delta / gap if gap != 0 else math.nan,
                        "distance_alone": float(np.linalg.norm(delta)), "distance_part": part,
                        "distance_share": part / norm if norm > 0 else math.nan,
                        "total_distance": norm, "total_loss_gap": gap})
    return out


def knob_rows(plan: Plan, dtype: str, results: dict[str, Result], attribution: list[dict]) -> list[dict]:
    """``training_knobs``: the closed-loop semantic gap between the base and each other framework split
    into exact Shapley values over the knobs that differ (`harness.training.plan`'s ``knobs`` runs):
    of the final loss, and of the parameters projected on the total difference ``D``."""
    from harness.compare.attribution import label

    out = []
    base = plan.base
    for other, groups in plan.knobs.items():
        n = len(groups)
        terms = [t for t in attribution if t["b"] == other]
        ends = {0: results.get(f"{base}|reference|{base}"), 2 ** n - 1: results.get(f"{base}|reference|{other}")}
        runs = {m: results.get(f"{base}|knobs|{other}#{m}") for m in range(1, 2 ** n - 1)}
        runs.update(ends)
        if not terms or n == 0 or any(r is None or not r.done for r in runs.values()):
            continue
        native_a, native_b = results[f"{base}|native|{base}"], results[f"{other}|native|{other}"]
        total = native_b.params[-1] - native_a.params[-1]
        norm = float(np.linalg.norm(total))
        gap = terms[0]["total_loss_gap"]

        phi_loss, phi_distance, alone = _shapley(n, runs, total, norm)
        for i, group in enumerate(groups):
            value_a, value_b = plan.knob_values[other][i]
            out.append({**_key(plan, dtype), "a": base, "b": other, "knob": ", ".join(label(k) for k in group),
                        "value_a": value_a, "value_b": value_b, "alone_loss": alone[i],
                        "shapley_loss": phi_loss[i], "loss_share": phi_loss[i] / gap if gap != 0 else math.nan,
                        "shapley_distance": phi_distance[i],
                        "distance_share": phi_distance[i] / norm if norm > 0 else math.nan})
    return out


def _shapley(n: int, runs: dict[int, Result], total: np.ndarray, norm: float
             ) -> tuple[list[float], list[float], list[float]]:
    """Shapley values of the final loss and of the projected parameters over ``runs`` (keyed by knob mask),
    and each knob's loss change alone."""
    from harness.compare.attribution import shapley

    def mask(s: frozenset) -> int:
        return sum(1 << i for i in s)

    def loss(s: frozenset) -> float:
        return float(runs[mask(s)].evals[-1, 0] - runs[0].evals[-1, 0])

    def moved(s: frozenset) -> float:
        delta = runs[mask(s)].params[-1] - runs[0].params[-1]
        return float(delta @ total) / norm if norm > 0 else 0.0

    return shapley(n, loss)[0], shapley(n, moved)[0], [loss(frozenset({i})) for i in range(n)]


def frames(rows: dict[str, list[dict]], columns: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame(rows.get(name, []), columns=cols) for name, cols in columns.items()}


__all__ = ["TERMS", "Result", "attribution_rows", "frames", "growth", "knob_rows", "pair_rows", "run_rows",
           "verdict"]
