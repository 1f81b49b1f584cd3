"""`rmsprop-harness gate`: a run against a baseline, with a verdict a CI job can act on.

Four checks; a *regression* in any of them fails the gate (exit 1):

* **conformance**: a case that passed in the baseline now fails, errors, is skipped or
  unsupported, or is missing (missing data fails closed); a case not in the baseline that
  fails or errors.
* **divergence**: at every recorded step of every case that passes in both, each figure of
  `GATED_FIGURES` (the parameters' max and median ULP error; the parameters' and each
  state's error in units of the rounding budget) must not exceed ``factor`` (2) times its
  baseline value. A figure under one ULP, or under one budget unit, counts as one: under
  that, the difference is the final rounding of the output itself, not a change in the
  arithmetic. Conformance runs on the CPU are bitwise reproducible (workers pin one
  thread; the streams are seeded), so any change here is caused by the code or the
  framework, never by noise; the factor leaves room for a different CPU's rounding paths
  and makes 1 -> 3 ULP news while 1 -> 1.5 ULP is not.
* **parity**: a cross-framework pair's verdict changed, or its divergence grew beyond
  ``factor`` (floor: one float64 budget), or the pair went missing.
* **throughput** (bench folders): a point is slower when its median step time grew by more
  than ``min_effect`` (10%) *and* a one-sided Mann-Whitney U test over the repeat samples
  (``sample_s``) gives p < ``alpha`` (0.01), as google benchmark's compare.py and asv do:
  the test says the shift is not noise, the effect size says it matters. Samples taken
  back to back share the machine's state of that minute, so on a shared machine two runs
  of the same code differ far more than their samples do (measured here: medians moved
  by -50% to +44% between two runs of the perf suite, and the U test alone flagged 11 of
  99 points). When both runs were measured in several rounds (``bench --rounds N``, each
  round in fresh workers), the shift must *also* be significant against the round-to-round
  noise: a one-sided Welch t-test on the logs of the round medians, p < ``alpha``. A point
  that passed and now errors or is missing also fails. Only between runs on the same
  machine type (CPU model and count, GPU names) with the same Python and package versions,
  unless ``throughput="always"``; ``"off"`` skips throughput (the project's own CI does:
  shared runners are too noisy). The copy kernels are not gated; their change is shown as
  the machine's own drift.

Everything else that changed (improvements, known failures, new cases, smaller drifts) is
listed as a notice; `changes` lists every figure that differs at all (the diff that
``--update-baseline`` shows).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .baseline import (
    CONFORMANCE_KEY,
    GATED_FIGURES,
    PARITY_KEY,
    THROUGHPUT_KEY,
    BaselineError,
    Tables,
)

FINDING_COLUMNS = ["check", "severity", "item", "figure", "step", "baseline", "current", "change", "message"]
CHECKS = ("conformance", "divergence", "parity", "throughput")
THROUGHPUT_MODES = ("auto", "always", "off")


@dataclass(frozen=True)
class Thresholds:
    """What counts as a regression (see the module docstring for the reasoning)."""

    factor: float = 2.0  # divergence and parity: growth beyond this factor of the baseline
    ulp_floor: float = 1.0  # ULP figures under this count as this
    budget_floor: float = 1.0  # budget-ratio figures under this count as this
    min_effect: float = 0.10  # throughput: median slower by more than this fraction ...
    alpha: float = 0.01  # ... and one-sided Mann-Whitney U p-value under this

    def __post_init__(self) -> None:
        if not self.factor > 1:
            raise ValueError(f"divergence factor {self.factor} must be > 1")
        if not 0 < self.min_effect < 10:
            raise ValueError(f"minimum effect {self.min_effect} must be in (0, 10)")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha {self.alpha} must be in (0, 1)")


@dataclass
class GateResult:
    findings: pd.DataFrame
    changes: pd.DataFrame  # every figure that differs at all, gated or not
    compared: dict[str, str]  # check -> what was compared, or why not
    thresholds: Thresholds
    baseline: dict[str, Any]
    current: dict[str, Any]
    throughput_note: str = ""
    updated: str | None = None  # the baseline folder, when --update-baseline replaced it
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> pd.DataFrame:
        return self.findings[self.findings["severity"] == "regression"]

    @property
    def passed(self) -> bool:
        return self.regressions.empty

    @property
    def exit_code(self) -> int:
        return 0 if self.passed or self.updated else 1

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "pass" if self.passed else "fail", "exit_code": self.exit_code,
                "regressions": len(self.regressions), "compared": self.compared, "thresholds": asdict(self.thresholds),
                "throughput_note": self.throughput_note, "notes": self.notes, "baseline": self.baseline,
                "current": self.current, "updated": self.updated,
                "findings": _records(self.findings), "changes": _records(self.changes)}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for JSON: NaN as null, an infinite change as the string "inf" (strict JSON has neither)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        return v

    return [{k: clean(v) for k, v in row.items()} for row in frame.astype(object).to_dict(orient="records")]


# -------------------------------------------------------------------- helpers
def _item(row: Any) -> str:
    return f"{row['case']} / {row['adapter']} [{row['dtype']}@{row['device']}]"


def _bench_item(row: Any) -> str:
    tensors = f" x{int(row['n_tensors'])} tensors" if int(row["n_tensors"]) > 1 and row["layout"] != "model" else ""
    return (f"{row['bench']}: {row['adapter']} {row['variant']} [{row['dtype']}@{row['device']}] "
            f"{float(row['n_params']):.0e} params{tensors}")


def _g(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float | np.floating):
        return f"{x:.4g}"
    return str(x)


class _Findings:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []

    def add(self, check: str, severity: str, item: str, message: str, figure: str = "", step: Any = None,
            baseline: Any = None, current: Any = None, change: float | None = None) -> None:
        self.rows.append({"check": check, "severity": severity, "item": item, "figure": figure,
                          "step": None if step is None else int(step), "baseline": _g(baseline),
                          "current": _g(current), "change": np.nan if change is None else float(change),
                          "message": message})

    def changed(self, check: str, item: str, figure: str, baseline: Any, current: Any, change: float | None = None,
                step: Any = None) -> None:
        self.changes.append({"check": check, "item": item, "figure": figure,
                             "step": None if step is None else int(step), "baseline": _g(baseline),
                             "current": _g(current), "change": np.nan if change is None else float(change)})


def _index(frame: pd.DataFrame, key: list[str], what: str) -> pd.DataFrame:
    missing = [k for k in key if k not in frame.columns]
    if missing:
        raise BaselineError(f"{what}: no {', '.join(missing)} column (not a table this harness wrote)")
    frame = frame.copy()
    for k in key:
        if k in ("n_params", "n_tensors"):
            frame[k] = pd.to_numeric(frame[k], errors="coerce").fillna(-1).astype("int64")
        else:
            frame[k] = frame[k].fillna("").astype(str)
    if frame.duplicated(key).any():
        dup = frame[frame.duplicated(key)].iloc[0]
        raise BaselineError(f"{what}: duplicate rows for {', '.join(str(dup[k]) for k in key)}")
    return frame.set_index(key, drop=False)


# --------------------------------------------------------------- conformance
def _conformance(base: Tables, cur: Tables, th: Thresholds, out: _Findings) -> tuple[str, list[tuple]]:
    """Status checks; returns what was compared and the keys that pass in both (for divergence)."""
    b = _index(base.summary, CONFORMANCE_KEY, "baseline summary")
    c = _index(cur.summary, CONFORMANCE_KEY, "current summary")
    both_ok: list[tuple] = []
    for key, row in b.iterrows():
        item = _item(row)
        was = row["status"]
        if key not in c.index:
            if was == "ok":
                out.add("conformance", "regression", item, "passed in the baseline, missing now "
                        "(missing data fails closed)", "status", baseline=was, current="missing")
            else:
                out.add("conformance", "notice", item, f"{was} in the baseline, missing now", "status",
                        baseline=was, current="missing")
            out.changed("conformance", item, "status", was, "missing")
            continue
        now_row = c.loc[key]
        now = now_row["status"]
        if now != was:
            out.changed("conformance", item, "status", was, now)
        if was == "ok" and now == "ok":
            both_ok.append(key)
        elif was == "ok":
            out.add("conformance", "regression", item, f"passed in the baseline, now {now}: "
                    f"{now_row['reason']}", "status", baseline=was, current=now)
        elif now == "ok":
            out.add("conformance", "improvement" if was in ("fail", "error") else "notice", item,
                    f"{was} in the baseline, passes now", "status", baseline=was, current=now)
        elif now in ("fail", "error"):
            out.add("conformance", "notice", item, f"still {now} (already {was} in the baseline): "
                    f"{now_row['reason']}", "status", baseline=was, current=now)
    for _key, row in c[~c.index.isin(b.index)].iterrows():
        item = _item(row)
        out.changed("conformance", item, "status", "absent", row["status"])
        if row["status"] in ("fail", "error"):
            out.add("conformance", "regression", item, f"not in the baseline and {row['status']}s: "
                    f"{row['reason']}", "status", baseline="absent", current=row["status"])
        else:
            out.add("conformance", "notice", item, f"not in the baseline ({row['status']}), not gated",
                    "status", baseline="absent", current=row["status"])
    return f"{len(b)} cases in the baseline, {len(c)} now", both_ok


def _divergence(base: Tables, cur: Tables, both_ok: list[tuple], th: Thresholds, out: _Findings) -> str:
    if not len(base.divergence.columns):
        return "not compared: the baseline has no divergence table"
    if not len(cur.divergence.columns):
        raise BaselineError(f"{cur.path}: no divergence.parquet beside summary.parquet")
    key = [*CONFORMANCE_KEY, "step"]
    b, c = _index(base.divergence, key, "baseline divergence"), _index(cur.divergence, key, "current divergence")
    ok = set(both_ok)
    b = b[[k[:-1] in ok for k in b.index]]
    figures = [f for f in GATED_FIGURES if f in b.columns]
    merged = b[[*figures]].join(c[[f for f in figures if f in c.columns]], how="left", rsuffix="_now")
    points = 0
    for case_key, rows in merged.groupby(level=list(range(len(CONFORMANCE_KEY))), sort=False):
        item = _item(dict(zip(CONFORMANCE_KEY, case_key, strict=True)))
        present = rows.index.isin(c.index)
        if not present.all():
            steps = [k[-1] for k in rows.index[~present]]
            out.add("divergence", "regression", item, f"recorded steps {_steps(steps)} missing now "
                    "(missing data fails closed)", "steps", baseline=len(rows), current=int(present.sum()))
            rows = rows[present]
        for fig in figures:
            now_col = f"{fig}_now" if f"{fig}_now" in rows else None
            bv = rows[fig].to_numpy(float)
            cv = rows[now_col].to_numpy(float) if now_col else np.full(len(rows), np.nan)
            steps = np.array([k[-1] for k in rows.index])
            has = np.isfinite(bv) | np.isinf(bv)
            bv, cv, steps = bv[has], cv[has], steps[has]
            if not len(bv):
                continue
            points += len(bv)
            lost = np.isnan(cv)
            floor = th.ulp_floor if fig.endswith("_ulp") else th.budget_floor
            with np.errstate(invalid="ignore", divide="ignore"):
                growth = np.where(lost, np.inf, cv / np.maximum(bv, floor))
                shrink = np.maximum(bv, floor) / np.maximum(cv, floor)
            diff = ~lost & (cv != bv)
            if diff.any():
                last = np.flatnonzero(diff)[-1]
                out.changed("divergence", item, fig, bv[last], cv[last],
                            cv[last] / bv[last] if bv[last] else None, steps[last])
            if lost.any():
                i = int(np.flatnonzero(lost)[0])
                out.add("divergence", "regression", item, f"{fig} missing now at step {steps[i]} (baseline "
                        f"{bv[i]:.4g}; missing data fails closed)", fig, steps[i], bv[i], None)
                continue
            over = growth > th.factor
            if over.any():
                i = int(np.argmax(np.where(over, growth, -np.inf)))
                out.add("divergence", "regression", item,
                        f"{fig} {bv[i]:.4g} -> {cv[i]:.4g} at step {steps[i]} ({_times(growth[i])} the "
                        f"baseline, limit {th.factor:g}x; {int(over.sum())} of {len(over)} recorded steps over)",
                        fig, steps[i], bv[i], cv[i], growth[i])
            elif (shrink > th.factor).any():
                i = int(np.argmax(shrink))
                out.add("divergence", "improvement", item,
                        f"{fig} {bv[i]:.4g} -> {cv[i]:.4g} at step {steps[i]} ({_times(1 / shrink[i])})",
                        fig, steps[i], bv[i], cv[i], cv[i] / bv[i] if bv[i] else None)
    return f"{points} step figures of {len(both_ok)} cases passing in both ({', '.join(figures)})"


def _times(x: float) -> str:
    return "infinitely many times" if not math.isfinite(x) else f"{x:.3g}x"


def _steps(steps: list) -> str:
    return ", ".join(map(str, steps[:5])) + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")


def _parity(base: Tables, cur: Tables, th: Thresholds, out: _Findings) -> str:
    if not len(base.parity.columns):
        return "not compared: the baseline has no parity table"
    b = _index(base.parity, PARITY_KEY, "baseline parity")
    c = _index(cur.parity, PARITY_KEY, "current parity") if len(cur.parity.columns) else None
    for key, row in b.iterrows():
        item = f"{row['scenario']}: {row['a']} vs {row['b']}"
        if c is None or key not in c.index:
            out.add("parity", "regression", item, "in the baseline, missing now (missing data fails closed)",
                    "pair", baseline=row["verdict"], current="missing")
            out.changed("parity", item, "verdict", row["verdict"], "missing")
            continue
        now = c.loc[key]
        bv, cv = float(row["budgets64"]), float(now["budgets64"])
        if bv != cv:
            out.changed("parity", item, "budgets64", bv, cv, cv / bv if bv else None)
        if now["verdict"] != row["verdict"]:
            out.changed("parity", item, "verdict", row["verdict"], now["verdict"])
            out.add("parity", "regression", item, f"verdict {row['verdict']} -> {now['verdict']} "
                    f"(divergence {float(row['divergence']):.3g} -> {float(now['divergence']):.3g})", "verdict",
                    baseline=row["verdict"], current=now["verdict"])
        elif cv / max(bv, 1.0) > th.factor:
            out.add("parity", "regression", item, f"divergence {bv:.4g} -> {cv:.4g} float64 budgets "
                    f"({_times(cv / max(bv, 1.0))}, limit {th.factor:g}x)", "budgets64", baseline=bv, current=cv,
                    change=cv / max(bv, 1.0))
    if c is not None:
        for _key, row in c[~c.index.isin(b.index)].iterrows():
            item = f"{row['scenario']}: {row['a']} vs {row['b']}"
            out.add("parity", "notice", item, f"not in the baseline ({row['verdict']}), not gated", "pair",
                    baseline="absent", current=row["verdict"])
    return f"{len(b)} pairs"


# ------------------------------------------------------------------ throughput
def comparable(base: Tables, cur: Tables) -> list[str]:
    """How the two bench runs' machines and versions differ (empty: comparable)."""
    be, ce = base.envs.get("throughput", {}), cur.envs.get("throughput", {})
    diffs = [f"{k} {be.get(k)!r} vs {ce.get(k)!r}" for k in ("cpu", "cpu_count", "python") if be.get(k) != ce.get(k)]
    bp, cp = be.get("packages") or {}, ce.get("packages") or {}
    diffs += [f"{p} {bp.get(p)} vs {cp.get(p)}" for p in sorted(set(bp) | set(cp)) if bp.get(p) != cp.get(p)]

    def gpus(t: Tables) -> set[str]:
        tp = t.throughput
        return set(tp.loc[tp["device"] != "cpu", "device_name"].dropna().astype(str)) if "device_name" in tp else set()

    if gpus(base) != gpus(cur):
        diffs.append(f"GPUs {sorted(gpus(base)) or 'none'} vs {sorted(gpus(cur)) or 'none'}")
    return diffs


def _samples(value: Any) -> np.ndarray:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.array([])
    return np.asarray(list(value), dtype=float)


def _rounds_test(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value that ``a``'s rounds are slower than ``b``'s: Welch's t-test on the logs of the
    round medians (run-to-run noise is multiplicative). Two noiseless sides decide by their means."""
    from scipy.stats import ttest_ind

    la, lb = np.log(a), np.log(b)
    if la.std() == 0 and lb.std() == 0:
        return 0.0 if la.mean() > lb.mean() else 1.0
    return float(ttest_ind(la, lb, equal_var=False, alternative="greater").pvalue)


def _throughput(base: Tables, cur: Tables, th: Thresholds, mode: str, out: _Findings) -> tuple[str, str]:
    """(what was compared, the note on comparability)."""
    if mode == "off":
        return "off (--throughput off)", "throughput not compared: --throughput off"
    if not len(base.throughput.columns):
        return "not compared: the baseline has no throughput table", ""
    if not len(cur.throughput.columns):
        raise BaselineError(f"the baseline has throughput results but {cur.path} has no throughput.parquet "
                            "(pass the bench folder too, or --throughput off)")
    diffs = comparable(base, cur)
    if diffs and mode == "auto":
        note = ("throughput not compared: the runs come from different machines or versions (" + "; ".join(diffs)
                + "). Pass --throughput always to compare anyway.")
        return "not compared (different machine or versions)", note
    note = ("throughput compared across different machines or versions, as asked (--throughput always): "
            + "; ".join(diffs)) if diffs else "throughput compared: same machine type and versions"
    from scipy.stats import mannwhitneyu

    b = _index(base.throughput, THROUGHPUT_KEY, "baseline throughput")
    c = _index(cur.throughput, THROUGHPUT_KEY, "current throughput")
    compared = 0
    for key, row in b.iterrows():
        item = _bench_item(row)
        copy = row["framework"] == "copy"
        if key not in c.index:
            if row["status"] == "ok" and not copy:
                out.add("throughput", "regression", item, "measured in the baseline, missing now "
                        "(missing data fails closed)", "status", baseline="ok", current="missing")
            continue
        now = c.loc[key]
        if row["status"] != "ok":
            if now["status"] == "ok":
                out.add("throughput", "notice", item, f"{row['status']} in the baseline, measured now",
                        "status", baseline=row["status"], current="ok")
            continue
        if now["status"] != "ok":
            out.add("throughput", "notice" if copy else "regression", item,
                    f"measured in the baseline, now {now['status']}: {now['reason']}", "status",
                    baseline="ok", current=now["status"])
            continue
        bs, cs = _samples(row.get("sample_s")), _samples(now.get("sample_s"))
        bm, cm = float(row["median_s"]), float(now["median_s"])
        effect = cm / bm - 1
        out.changed("throughput", item, "median_s", bm, cm, cm / bm)
        if len(bs) < 2 or len(cs) < 2:
            out.add("throughput", "notice" if copy else "regression", item,
                    f"no repeat samples to compare ({len(bs)} in the baseline, {len(cs)} now; saved by an "
                    "older harness? re-measure)", "sample_s", baseline=len(bs), current=len(cs))
            continue
        compared += 1
        slower = mannwhitneyu(cs, bs, alternative="greater").pvalue
        faster = mannwhitneyu(cs, bs, alternative="less").pvalue
        detail = (f"median {bm * 1e3:.4g} -> {cm * 1e3:.4g} ms ({effect:+.1%}), Mann-Whitney U one-sided p = "
                  f"{min(slower, faster):.2g} over {len(bs)}/{len(cs)} samples")
        br, cr = _samples(row.get("round_median_s")), _samples(now.get("round_median_s"))
        if len(br) >= 2 and len(cr) >= 2:
            r_slower, r_faster = _rounds_test(cr, br), _rounds_test(br, cr)
            detail += f"; Welch t over log round medians p = {min(r_slower, r_faster):.2g} ({len(br)}/{len(cr)} rounds)"
        else:
            r_slower = r_faster = 0.0  # nothing to test against: the samples' test decides alone
            detail += " (one round: run-to-run noise not measured)"
        if copy:
            if abs(effect) > th.min_effect:
                out.add("throughput", "notice", item, f"(the machine's memory bandwidth, not gated): {detail}",
                        "median_s", baseline=bm, current=cm, change=cm / bm)
        elif effect > th.min_effect and slower < th.alpha and r_slower < th.alpha:
            out.add("throughput", "regression", item, f"slower, {detail} (limits {th.min_effect:.0%} and "
                    f"p < {th.alpha:g})", "median_s", baseline=bm, current=cm, change=cm / bm)
        elif effect < -th.min_effect and faster < th.alpha and r_faster < th.alpha:
            out.add("throughput", "improvement", item, f"faster, {detail}", "median_s", baseline=bm,
                    current=cm, change=cm / bm)
        elif abs(effect) > th.min_effect:
            out.add("throughput", "notice", item, f"{detail}: not significant, within the noise",
                    "median_s", baseline=bm, current=cm, change=cm / bm)
    return f"{compared} points with samples", note


# ------------------------------------------------------------------------ gate
def gate(baseline: Tables, current: Tables, thresholds: Thresholds | None = None,
         throughput: str = "auto") -> GateResult:
    """Compare ``current`` with ``baseline`` (see the module docstring)."""
    if throughput not in THROUGHPUT_MODES:
        raise ValueError(f"throughput mode {throughput!r}: choose from {', '.join(THROUGHPUT_MODES)}")
    th = thresholds or Thresholds()
    out = _Findings()
    compared: dict[str, str] = {}
    notes: list[str] = []
    if not baseline.conformance and not baseline.bench:
        raise BaselineError(f"{baseline.path}: the baseline holds no results")
    if baseline.conformance:
        if not current.conformance:
            suites = ", ".join(baseline.suites("conformance"))
            raise BaselineError(f"the baseline has conformance results (suite {suites}) but {current.path} has no "
                                "summary.parquet")
        if baseline.suites("conformance") != current.suites("conformance"):
            raise BaselineError(f"the baseline is for suite {', '.join(baseline.suites('conformance'))}, the current "
                                f"run is suite {', '.join(current.suites('conformance'))}")
        cpus = [t.envs.get("conformance", {}).get("cpu") for t in (baseline, current)]
        if cpus[0] != cpus[1]:
            notes.append(f"The baseline's conformance run was on {cpus[0]}, this one on {cpus[1]}: divergence is "
                         "compared anyway. Runs are bitwise reproducible on one machine type; another CPU may round "
                         "differently. If only this machine fails, save a baseline on it.")
        compared["conformance"], both_ok = _conformance(baseline, current, th, out)
        compared["divergence"] = _divergence(baseline, current, both_ok, th, out)
        compared["parity"] = _parity(baseline, current, th, out)
    elif current.conformance:
        notes.append("the current conformance results are not gated: the baseline has none")
    if (baseline.bench and throughput != "off" and current.bench
            and baseline.suites("throughput") != current.suites("throughput")):
            raise BaselineError(f"the baseline's bench suite is {', '.join(baseline.suites('throughput'))}, the "
                                f"current one {', '.join(current.suites('throughput'))}")
    if baseline.bench or throughput == "off":
        compared["throughput"], note = _throughput(baseline, current, th, throughput, out)
    else:
        compared["throughput"], note = "not compared: the baseline has no throughput table", ""
    findings = pd.DataFrame(out.rows, columns=FINDING_COLUMNS)
    order = {"regression": 0, "improvement": 1, "notice": 2}
    findings = findings.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    changes = pd.DataFrame(out.changes, columns=["check", "item", "figure", "step", "baseline", "current", "change"])
    return GateResult(findings, changes, compared, th, baseline.describe(), current.describe(), note, notes=notes)


# --------------------------------------------------------------------- output
def _md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame, columns: list[str], limit: int | None = None) -> str:
    shown = frame if limit is None else frame.head(limit)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in shown.itertuples(index=False):
        cells = []
        for col in columns:
            value = getattr(row, col)
            if col == "change":
                value = "" if value != value else f"{value:.3g}x"
            elif col == "step":
                value = "" if value is None or value != value else int(value)
            cells.append(_md_escape(value))
        lines.append("| " + " | ".join(cells) + " |")
    if limit is not None and len(frame) > limit:
        lines.append(f"\n... and {len(frame) - limit} more (gate.md and gate.json have them all)")
    return "\n".join(lines)


def markdown(result: GateResult, limit: int | None = 25) -> str:
    """The verdict as Markdown (a CI job summary): the verdict, what was compared, the regressions,
    improvements and notices, every changed figure (folded; in full when the baseline was updated;
    only counted when ``limit`` shortens the tables), the thresholds."""
    th = result.thresholds
    n = len(result.regressions)
    if result.updated:
        head = f"## rmsprop-harness gate: baseline updated ({len(result.changes)} figures changed)"
    else:
        head = (f"## rmsprop-harness gate: {'PASS' if result.passed else 'FAIL'}"
                + (f" ({n} regression{'s' if n != 1 else ''})" if n else ""))
    lines = [head, ""]
    for label, who in (("baseline", result.baseline), ("current", result.current)):
        parts = [f"`{who['path']}`"]
        for kind in ("conformance", "throughput"):
            if kind in who:
                k = who[kind]
                rev = (k.get("git") or "")[:10] + ("+dirty" if k.get("dirty") else "")
                parts.append(f"{kind} suite `{k.get('suite')}` at {rev or 'unknown revision'} on {k.get('cpu')}, "
                             f"{k.get('started')}")
        lines.append(f"- {label}: " + "; ".join(parts))
    lines += ["", "| check | compared |", "|---|---|"]
    lines += [f"| {check} | {_md_escape(text)} |" for check, text in result.compared.items()]
    if result.throughput_note:
        lines += ["", result.throughput_note]
    lines += [f"\n{note}" for note in result.notes]
    for severity, title in (("regression", "Regressions"), ("improvement", "Improvements"), ("notice", "Notices")):
        rows = result.findings[result.findings["severity"] == severity]
        if len(rows):
            lines += ["", f"### {title} ({len(rows)})", "", _table(rows, ["check", "item", "message"], limit)]
    change_columns = ["check", "item", "figure", "step", "baseline", "current", "change"]
    if result.updated:
        lines += ["", f"### Changes written to `{result.updated}` ({len(result.changes)})", ""]
        lines += [_table(result.changes, change_columns, limit) if len(result.changes) else "Nothing changed."]
    elif limit is None and len(result.changes):
        lines += ["", f"<details><summary>Every changed figure ({len(result.changes)})</summary>", "",
                  _table(result.changes, change_columns, limit), "", "</details>"]
    elif len(result.changes):
        lines += ["", f"{len(result.changes)} figures differ from the baseline in all (gate.md lists them)."]
    lines += ["", "### Thresholds", "",
              f"- divergence: each of {', '.join(GATED_FIGURES)} at every recorded step may grow to "
              f"{th.factor:g}x its baseline value (values under {th.ulp_floor:g} ULP or {th.budget_floor:g} budget "
              "unit count as that much: below it is the output's own rounding); conformance runs are bitwise "
              "reproducible, so a change is the code's or the framework's, not noise",
              f"- parity: a verdict change, or a divergence over {th.factor:g}x the baseline (floor: one float64 "
              "budget)",
              f"- throughput: median step time slower by more than {th.min_effect:.0%} and a one-sided Mann-Whitney "
              f"U test over the repeat samples with p < {th.alpha:g}, and, when both runs have several rounds, a "
              f"one-sided Welch t-test over the log round medians with p < {th.alpha:g}; same machine type and "
              "versions only unless --throughput always",
              "- missing data (a case, a step, a figure, a bench point) fails closed"]
    return "\n".join(lines) + "\n"


def write(result: GateResult, out: str | Path) -> tuple[Path, Path]:
    """``gate.md`` and ``gate.json`` in ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "gate.md", folder / "gate.json"
    md.write_text(markdown(result, limit=None), encoding="utf-8")
    js.write_text(json.dumps(result.as_dict(), indent=2, default=_json_default) + "\n", encoding="utf-8")
    return md, js


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


__all__ = ["FINDING_COLUMNS", "GateResult", "Thresholds", "comparable", "gate", "markdown", "write"]
