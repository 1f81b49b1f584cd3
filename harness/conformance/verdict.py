"""Judging one task: its divergence rows against the reference, its ULP histogram, its verdict and
its summary row (statuses: `harness.base.schema.STATUSES`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from harness.adapters import ADAPTERS, STATE_KINDS
from harness.base import schema
from harness.conformance.metrics import ULP_LABELS, ReferencePoint, divergence, ulp_histogram
from harness.conformance.plan import Planned
from reference.budget import run_tolerance, state_tolerance

#: What a quantity diverging first says about the implementation (its causes, most likely first).
DIAGNOSIS = {
    "nu": "the square average diverges: how it is updated (alpha/rho and which term it weights), where it "
          "starts (0 or 1) or which gradient it sees (weight decay, clipping)",
    "mu": "the gradient average (centered) diverges while the square average agrees",
    "trace": "the momentum buffer diverges while the averages agree: the momentum coefficient, or whether lr "
             "sits inside the buffer",
    "parameters": "the optimizer state agrees and the parameters do not: the update rule (eps, inside or outside "
                  "the sqrt, the lr, weight decay applied to the parameters)",
}


def _failures(row: dict) -> list[tuple[str, str]]:
    """The quantities out of tolerance at one recorded step, the state before the parameters (a wrong state
    makes the parameters wrong too), each with its message."""
    out = []
    for kind in (*STATE_KINDS, "parameters"):
        col = "" if kind == "parameters" else f"{kind}_"
        ratio = row.get(f"{col}budget_ratio")
        if ratio is None or pd.isna(ratio):
            continue
        tol, nonfinite = row[f"{col}tolerance"], row[f"{col}nonfinite_mismatch"]
        what = "parameters" if kind == "parameters" else f"state {kind}"
        if nonfinite:
            out.append((kind, f"{what}: {int(nonfinite)} positions non-finite on one side only at step {row['step']}"))
        elif ratio > tol:
            out.append((kind, f"{what}: {ratio:.3g} budgets > tolerance {tol:.3g} at step {row['step']} (max abs err "
                              f"{row[f'{col}max_abs_err']:.3g}, max rel err {row[f'{col}max_rel_err']:.3g})"))
    return out


def verdict(rows: list[dict], points: list[ReferencePoint]) -> tuple[str, str, float]:
    """(status, reason, tolerance_used) from the divergence rows of one task and its reference points.

    A failure names the first quantity out of tolerance at the first failing step, the optimizer state before
    the parameters, and says what that points at (`DIAGNOSIS`): the square average wrong (its update or
    start), the state right and the parameters wrong (the update rule), or no state to tell them apart."""
    used, first = 0.0, None
    for row in rows:
        for col in ("", *(f"{k}_" for k in STATE_KINDS)):
            ratio = row.get(f"{col}budget_ratio")
            if ratio is not None and not pd.isna(ratio):
                used = max(used, ratio / row[f"{col}tolerance"])
        failing = _failures(row)
        if first is None and failing:
            kind, message = failing[0]
            states = [k for k in STATE_KINDS if not pd.isna(row.get(f"{k}_budget_ratio", np.nan))]
            if kind == "parameters" and not states:
                why = "the adapter reports no optimizer state, so the accumulator cannot be told from the update rule"
            else:
                why = DIAGNOSIS[kind]
            first = f"{message}; {why}"
    if first is not None:
        return "fail", first, used
    last = points[-1] if points else None
    blown = last is not None and not any(np.isfinite(p).any() for p in last.params.values())
    if not any(p.moved for p in points) or blown:
        finite = any(np.isfinite(p).any() for point in points for p in point.params.values())
        why = ("no parameter ever moves (every update rounds to nothing)" if finite and not blown else
               f"every parameter is non-finite on both sides{' by the end' if finite else ''}")
        return "degenerate", f"nothing was compared: {why}; both sides agree trivially", used
    return "ok", f"within {used:.1%} of the rounding tolerance", used


def divergence_rows(planned: Planned, snapshots: list, points: dict[int, ReferencePoint], suite: str) -> list[dict]:
    rows = []
    info = ADAPTERS[planned.adapter]
    for snap in snapshots:
        point = points[snap.step]
        metrics = divergence(snap, point, planned.dtype)
        row = {"suite": suite, "case": planned.case.name, "adapter": planned.label, "framework": info.family,
               "device": planned.device, "dtype": planned.dtype, "step": snap.step, **metrics,
               "tolerance": run_tolerance(planned.spec, snap.step, planned.dtype)}
        for kind in STATE_KINDS:
            if f"{kind}_budget_ratio" in metrics:
                row[f"{kind}_tolerance"] = state_tolerance(planned.spec, snap.step, planned.dtype, kind)
        rows.append({c: row.get(c, np.nan) for c in schema.DIVERGENCE})
    return rows


def ulp_rows(planned: Planned, snapshots: list, points: dict[int, ReferencePoint], suite: str) -> list[dict]:
    """The per-element ULP histogram of the parameters at the last recorded step."""
    if not snapshots:
        return []
    last = snapshots[-1]
    counts = ulp_histogram(last, points[last.step], planned.dtype)
    base = {"suite": suite, "case": planned.case.name, "adapter": planned.label,
            "framework": ADAPTERS[planned.adapter].family, "device": planned.device, "dtype": planned.dtype,
            "step": last.step}
    return [{**base, "bin": i, "label": label, "count": n} for i, (label, n) in enumerate(zip(ULP_LABELS, counts,
                                                                                               strict=True))]


def summary_row(planned: Planned, suite: str, status: str, reason: str, rows: list[dict] | None = None,
             payload: dict | None = None, used: float = np.nan) -> dict:
    info = ADAPTERS[planned.adapter]
    row: dict[str, Any] = {
        "suite": suite, "case": planned.case.name, "adapter": planned.label, "framework": info.family,
        "preset": info.preset, "device": planned.device, "dtype": planned.dtype,
        "stream": planned.case.stream.label(), "steps": planned.case.steps, "status": status, "reason": reason,
        "warnings": schema.WARNING_SEPARATOR.join(planned.spec.notes) if planned.spec is not None else "",
        "args": json.dumps(planned.task.kwargs if planned.task else planned.case.spec.knobs() if planned.case.spec
                           else {}, sort_keys=True, default=str),
        "expected": len(planned.task.record_steps) if planned.task else 0,
        "recorded": len(rows) if rows else 0,
    }
    if payload is not None:
        row["seconds"] = payload.get("seconds", np.nan)
        row["device_name"] = payload.get("device_name", "")
    if rows:
        last = rows[-1]
        row |= {k: last[k] for k in ("max_abs_err", "max_rel_err", "max_ulp", "median_ulp", "budget_ratio",
                                     "tolerance", "nonfinite_mismatch")}
        row |= {f"{k}_budget_ratio": last[f"{k}_budget_ratio"] for k in STATE_KINDS}
        row["worst_budget_ratio"] = max(r["budget_ratio"] for r in rows)
        row["tolerance_used"] = used
    return {c: row.get(c, np.nan) for c in schema.SUMMARY}


__all__ = ["divergence_rows", "summary_row", "ulp_rows", "verdict"]
