"""The lookback gate: a new run against the distribution of the last N runs on the same machine fingerprint.

conbench compares a result with a z-score over a lookback window of earlier commits; here the window is
the last ``last`` runs in the store of the same kind, suite and fingerprint (never the run itself), and
the bound is a one-sided *prediction interval* for one new value from a normal sample of ``n`` values:

    upper = mean + t_{1 - a, n - 1} · sd · sqrt(1 + 1/n),     a = alpha / series (Bonferroni)

so a gate of an unchanged build flags any series with probability about ``alpha``, however many series
the run has. Every metric here is worse when higher (step time, rounding-budget ratio, share of the
tolerance, ULP error); GB/s is the same information as the step time and is not gated twice. A
series whose window is constant (conformance on one fingerprint is bitwise reproducible) is flagged by
any increase at all. A series with fewer than ``minimum`` earlier runs is ``insufficient``, named, and
never counted as passing; a gate in which nothing could be judged fails.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from harness.history.store import HistoryError, Store

GATED = ("median_s", "worst_budget_ratio", "tolerance_used", "max_ulp")
COLUMNS = ["series", "metric", "value", "window", "mean", "sd", "upper", "verdict"]


def lookback_gate(store: Store, run_id: str, *, last: int = 10, alpha: float = 0.01, minimum: int = 3) -> pd.DataFrame:
    """One row per gated series of run ``run_id`` (already in ``store``): its value, its window and the verdict."""
    runs = store.runs()
    me = runs[runs["run_id"] == run_id]
    if me.empty:
        raise HistoryError(f"run {run_id} is not in {store.path}")
    me = me.iloc[0]
    same = runs[(runs["kind"] == me["kind"]) & (runs["suite"] == me["suite"])
                & (runs["fingerprint"] == me["fingerprint"]) & (runs["run_id"] != run_id)]
    order = list(runs["run_id"])
    earlier = same[same["run_id"].map(order.index) < order.index(run_id)].tail(last)
    frame = store.frame()
    frame = frame[frame["metric"].isin(GATED)]
    mine = frame[frame["run_id"] == run_id]
    window = frame[frame["run_id"].isin(set(earlier["run_id"]))]
    n_series = max(1, len(mine))
    rows = []
    for r in mine.itertuples():
        values = window[(window["series"] == r.series) & (window["metric"] == r.metric)]["value"].dropna()
        n = len(values)
        row = {"series": r.series, "metric": r.metric, "value": r.value, "window": n, "mean": math.nan,
               "sd": math.nan, "upper": math.nan}
        if n < minimum:
            rows.append({**row, "verdict": f"insufficient ({n} earlier runs, {minimum} needed)"})
            continue
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        t = float(stats.t.ppf(1 - alpha / n_series, n - 1))
        upper = mean + t * sd * math.sqrt(1 + 1 / n)  # sd 0 (a bitwise-reproducible figure): any increase
        verdict = "regression" if r.value > upper * (1 + 1e-12) else "ok"
        rows.append({**row, "mean": mean, "sd": sd, "upper": upper, "verdict": verdict})
    return pd.DataFrame(rows, columns=COLUMNS)


def failed(table: pd.DataFrame) -> bool:
    """A regression, or nothing judged at all."""
    return bool((table["verdict"] == "regression").any()) or not (table["verdict"] == "ok").any()


__all__ = ["COLUMNS", "GATED", "failed", "lookback_gate"]
