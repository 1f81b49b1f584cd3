"""The gate's numerical checks (conformance statuses, divergence per step, parity), in two modes.

**exact** (the same machine fingerprint and package versions, `harness.base.fingerprint`): a
conformance run is bitwise reproducible there, so any change is the code's or the
framework's. Each of `GATED_FIGURES` may grow to ``factor`` (2) times its baseline at every
recorded step; a figure under one ULP or one budget unit counts as one (below that it is
the output's own rounding). A harmless reordering of one operation can move the worst ULP
by 30x and is reported here: on this machine, it *is* a change.

**portable** (another CPU, SIMD path, math library or framework version): the kernels round
differently while every row stays inside its tolerance, so raw ULP figures move freely
(AMD EPYC with AVX2 against an Intel Xeon with AVX-512: the worst ULP of a row moved up to
9.3x, its share of tolerance at most 1.4x, +0.085). Statuses must hold, and each budget
figure is judged as its **share of the tolerance** ``s = budget_ratio / tolerance``: a
recorded step fails when ``s_now > near`` (1/2) **and** ``s_now > share_factor * s_base``
(2x). The tolerance is a worst-case bound for *any* order of IEEE operations (every
rounding at most u, all aligned), so a correct implementation stays at ``s <= 1`` on every
machine; realised errors are far below it (the worst row of the default suite uses 35% on
either machine). A row therefore fails only when it moves from comfortably inside (at most
a quarter of its budget, so that twice is still at most half) into the upper half of its
worst-case budget, more than the largest cross-machine movement measured (1.4x) with room to
spare; it can never alarm while it stays under half of its budget, however its ULPs move.
ULP figures are listed as changes, not gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.base import fingerprint
from harness.base.schema import STATUSES
from harness.gate.baseline import CONFORMANCE_KEY, GATED_FIGURES, PARITY_KEY, SHARES, BaselineError, Tables
from harness.gate.findings import Findings, Thresholds, index, item, steps_text, times

SAME_MATHEMATICS = ("identical", "rounding")


@dataclass(frozen=True)
class Mode:
    name: str  # "exact" or "portable"
    reason: str


def choose_mode(base: Tables, cur: Tables) -> Mode:
    """exact on the same fingerprint and versions, portable otherwise (with the differences)."""
    fb, fc = base.fingerprint(), cur.fingerprint()
    diffs = fingerprint.differences(fb, fc)
    bp = (base.envs.get("conformance") or {}).get("packages") or {}
    cp = (cur.envs.get("conformance") or {}).get("packages") or {}
    versions = [f"{p} {bp.get(p)} vs {cp.get(p)}" for p in sorted(set(bp) | set(cp)) if bp.get(p) != cp.get(p)]
    if not diffs and not versions:
        digest = str(fb.get("digest"))[:12]
        return Mode("exact", f"same machine fingerprint ({digest}) and package versions: conformance figures are "
                             "bitwise reproducible here, so any change is the code's or the framework's")
    why = "; ".join([*(f"fingerprint: {d}" for d in diffs[:6]), *(f"version: {v}" for v in versions[:6])])
    return Mode("portable", f"the runs differ in what decides rounding ({why}): kernels take other paths, so "
                            "divergence is judged as share of tolerance, not in ULPs")


def _status(value: Any) -> str:
    """A status read from a table; anything this harness does not write counts as an error."""
    return value if value in STATUSES else "error"


def conformance(base: Tables, cur: Tables, out: Findings, subset: bool) -> tuple[str, list[tuple]]:
    """Status checks; returns what was compared and the keys that pass in both (for divergence)."""
    b = index(base.summary, CONFORMANCE_KEY, "baseline summary")
    c = index(cur.summary, CONFORMANCE_KEY, "current summary")
    if subset:
        b = b[b.index.isin(c.index)]
    both_ok: list[tuple] = []
    for key, row in b.iterrows():
        name = item(row)
        was = _status(row["status"])
        if key not in c.index:
            if was == "ok":
                out.add("conformance", "regression", name, "passed in the baseline, missing now "
                        "(missing data fails closed)", "status", baseline=was, current="missing")
            else:
                out.add("conformance", "notice", name, f"{was} in the baseline, missing now", "status",
                        baseline=was, current="missing")
            out.changed("conformance", name, "status", was, "missing")
            continue
        now_row = c.loc[key]
        raw = now_row["status"]
        now = _status(raw)
        reason = now_row["reason"] if now == raw else f"unknown status {raw!r} (counted as an error)"
        if now != was:
            out.changed("conformance", name, "status", was, now)
        if was == "ok" and now == "ok":
            both_ok.append(key)
        elif was == "ok":
            out.add("conformance", "regression", name, f"passed in the baseline, now {now}: {reason}", "status",
                    baseline=was, current=now)
        elif now == "ok":
            out.add("conformance", "improvement" if was in ("fail", "error", "degenerate") else "notice", name,
                    f"{was} in the baseline, passes now", "status", baseline=was, current=now)
        elif now in ("fail", "error", "degenerate"):
            out.add("conformance", "notice", name, f"still {now} (already {was} in the baseline): {reason}",
                    "status", baseline=was, current=now)
    for _key, row in c[~c.index.isin(b.index)].iterrows():
        name = item(row)
        now = _status(row["status"])
        out.changed("conformance", name, "status", "absent", now)
        if now in ("fail", "error", "degenerate"):
            out.add("conformance", "regression", name, f"not in the baseline and {now}: {row['reason']}",
                    "status", baseline="absent", current=now)
        else:
            out.add("conformance", "notice", name, f"not in the baseline ({now}), not gated", "status",
                    baseline="absent", current=now)
    return f"{len(b)} cases in the baseline{' (those in the current run: --subset)' if subset else ''}, " \
           f"{len(c)} now", both_ok


def divergence(base: Tables, cur: Tables, both_ok: list[tuple], th: Thresholds, out: Findings, mode: Mode) -> str:
    if not len(base.divergence.columns):
        return "not compared: the baseline has no divergence table"
    if not len(cur.divergence.columns):
        raise BaselineError(f"{cur.path}: no divergence.parquet beside summary.parquet")
    key = [*CONFORMANCE_KEY, "step"]
    b, c = index(base.divergence, key, "baseline divergence"), index(cur.divergence, key, "current divergence")
    ok = set(both_ok)
    b = b.loc[np.array([k[:-1] in ok for k in b.index], dtype=bool)]
    if mode.name == "exact":
        figures = [f for f in GATED_FIGURES if f in b.columns]
    else:
        figures = [f for f in SHARES if f in b.columns and SHARES[f] in b.columns]
        if not figures:
            raise BaselineError(f"{base.path}: no tolerance columns in the baseline's divergence table; re-save it "
                                "with this harness to compare across machines")
    columns = list(dict.fromkeys([*figures, *(SHARES[f] for f in figures if f in SHARES and SHARES[f] in b.columns),
                                  *(f for f in GATED_FIGURES if f in b.columns)]))
    merged = b[columns].join(c[[f for f in columns if f in c.columns]], how="left", rsuffix="_now")
    points = 0
    for case_key, rows in merged.groupby(level=list(range(len(CONFORMANCE_KEY))), sort=False):
        name = item(dict(zip(CONFORMANCE_KEY, case_key, strict=True)))
        present = rows.index.isin(c.index)
        if not present.all():
            steps = [k[-1] for k in rows.index[~present]]
            out.add("divergence", "regression", name, f"recorded steps {steps_text(steps)} missing now "
                    "(missing data fails closed)", "steps", baseline=len(rows), current=int(present.sum()))
            rows = rows[present]
        steps = np.array([k[-1] for k in rows.index])
        for fig in [f for f in GATED_FIGURES if f in rows and f not in figures]:  # listed, not gated (portable)
            _changed(out, name, fig, rows, steps)
        for fig in figures:
            points += _figure(out, name, fig, rows, steps, th, mode)
    rule = (f"{', '.join(figures)}, each at most {th.factor:g}x its baseline" if mode.name == "exact" else
            f"{', '.join(figures)} as share of tolerance: fails above {th.near:g} and {th.share_factor:g}x the "
            "baseline's share")
    return f"{points} step figures of {len(both_ok)} cases passing in both ({rule})"


def _values(rows, fig: str) -> tuple[np.ndarray, np.ndarray]:
    bv = rows[fig].to_numpy(float)
    cv = rows[f"{fig}_now"].to_numpy(float) if f"{fig}_now" in rows else np.full(len(rows), np.nan)
    return bv, cv


def _changed(out: Findings, name: str, fig: str, rows, steps: np.ndarray) -> None:
    """List a figure that is not gated in this mode (the ULPs across machines) among the changes."""
    bv, cv = _values(rows, fig)
    _changed_values(out, name, fig, bv, cv, np.isnan(cv) | np.isnan(bv), steps)


def _figure(out: Findings, name: str, fig: str, rows, steps: np.ndarray, th: Thresholds, mode: Mode) -> int:
    """Judge one figure of one case over its recorded steps; the number of step figures compared."""
    bv, cv = _values(rows, fig)
    has = np.isfinite(bv) | np.isinf(bv)
    if mode.name == "portable":
        tol = SHARES[fig]
        tb, tc = rows[tol].to_numpy(float), (rows[f"{tol}_now"].to_numpy(float) if f"{tol}_now" in rows
                                             else np.full(len(rows), np.nan))
        with np.errstate(invalid="ignore", divide="ignore"):
            bv, cv = bv / tb, cv / tc
        has &= np.isfinite(tb)
    bv, cv, steps = bv[has], cv[has], steps[has]
    if not len(bv):
        return 0
    lost = np.isnan(cv)
    _changed_values(out, name, fig if mode.name == "exact" else f"{fig} share", bv, cv, lost, steps)
    if lost.any():
        i = int(np.flatnonzero(lost)[0])
        out.add("divergence", "regression", name, f"{fig} missing now at step {steps[i]} (baseline "
                f"{bv[i]:.4g}; missing data fails closed)", fig, steps[i], bv[i], None)
        return len(bv)
    if mode.name == "exact":
        floor = th.ulp_floor if fig.endswith("_ulp") else th.budget_floor
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = cv / np.maximum(bv, floor)
            shrink = np.maximum(bv, floor) / np.maximum(cv, floor)
        over = growth > th.factor
        what, limit = "the baseline", f"limit {th.factor:g}x"
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = np.where(bv > 0, cv / bv, np.inf)
            shrink = np.where(cv > 0, bv / cv, np.inf)
        over = (cv > th.near) & (growth > th.share_factor)
        what, limit = "the baseline's share", f"limit: above {th.near:.0%} of the tolerance and {th.share_factor:g}x"
    unit = "" if mode.name == "exact" else " of the tolerance"
    if over.any():
        i = int(np.argmax(np.where(over, growth, -np.inf)))
        shown = (f"{bv[i]:.4g} -> {cv[i]:.4g}" if mode.name == "exact" else f"{bv[i]:.1%} -> {cv[i]:.1%}")
        out.add("divergence", "regression", name,
                f"{fig} {shown}{unit} at step {steps[i]} ({times(growth[i])} {what}, {limit}; {int(over.sum())} of "
                f"{len(over)} recorded steps over)", fig, steps[i], bv[i], cv[i], growth[i])
    elif (shrink > th.factor).any() and (mode.name == "exact" or (bv > th.near).any()):
        i = int(np.argmax(shrink))
        out.add("divergence", "improvement", name, f"{fig} {bv[i]:.4g} -> {cv[i]:.4g}{unit} at step {steps[i]} "
                f"({times(1 / shrink[i])})", fig, steps[i], bv[i], cv[i], cv[i] / bv[i] if bv[i] else None)
    return len(bv)


def _changed_values(out: Findings, name: str, fig: str, bv, cv, lost, steps) -> None:
    diff = ~lost & (cv != bv)
    if diff.any():
        last = np.flatnonzero(diff)[-1]
        out.changed("divergence", name, fig, bv[last], cv[last], cv[last] / bv[last] if bv[last] else None,
                    steps[last])


def parity(base: Tables, cur: Tables, th: Thresholds, out: Findings, mode: Mode, subset: bool) -> str:
    if not len(base.parity.columns):
        return "not compared: the baseline has no parity table"
    if not len(cur.parity.columns) and subset:
        return "not compared: the current run has no parity table (a filtered run computes none)"
    b = index(base.parity, PARITY_KEY, "baseline parity")
    c = index(cur.parity, PARITY_KEY, "current parity") if len(cur.parity.columns) else None
    portable = mode.name == "portable"
    for key, row in b.iterrows():
        name = f"{row['scenario']}: {row['a']} vs {row['b']}"
        if c is None or key not in c.index:
            out.add("parity", "regression", name, "in the baseline, missing now (missing data fails closed)",
                    "pair", baseline=row["verdict"], current="missing")
            out.changed("parity", name, "verdict", row["verdict"], "missing")
            continue
        now = c.loc[key]
        bv, cv = float(row["budgets64"]), float(now["budgets64"])
        if bv != cv:
            out.changed("parity", name, "budgets64", bv, cv, cv / bv if bv else None)
        same_class = portable and row["verdict"] in SAME_MATHEMATICS and now["verdict"] in SAME_MATHEMATICS
        if now["verdict"] != row["verdict"]:
            out.changed("parity", name, "verdict", row["verdict"], now["verdict"])
            if not same_class:
                out.add("parity", "regression", name, f"verdict {row['verdict']} -> {now['verdict']} "
                        f"(divergence {float(row['divergence']):.3g} -> {float(now['divergence']):.3g})", "verdict",
                        baseline=row["verdict"], current=now["verdict"])
                continue
        if portable:
            sb, sc = bv / float(row["tolerance64"]), cv / float(now["tolerance64"])
            if sc > th.near and sc > th.share_factor * sb:
                out.add("parity", "regression", name, f"divergence {sb:.1%} -> {sc:.1%} of the float64 tolerance "
                        f"({times(sc / sb if sb else float('inf'))}, limit: above {th.near:.0%} and "
                        f"{th.share_factor:g}x)", "budgets64", baseline=bv, current=cv)
        elif cv / max(bv, 1.0) > th.factor:
            out.add("parity", "regression", name, f"divergence {bv:.4g} -> {cv:.4g} float64 budgets "
                    f"({times(cv / max(bv, 1.0))}, limit {th.factor:g}x)", "budgets64", baseline=bv, current=cv,
                    change=cv / max(bv, 1.0))
    if c is not None:
        for _key, row in c[~c.index.isin(b.index)].iterrows():
            name = f"{row['scenario']}: {row['a']} vs {row['b']}"
            out.add("parity", "notice", name, f"not in the baseline ({row['verdict']}), not gated", "pair",
                    baseline="absent", current=row["verdict"])
    return f"{len(b)} pairs" + (" (identical and rounding are one class across machines)" if portable else "")


__all__ = ["Mode", "choose_mode", "conformance", "divergence", "parity"]
