"""The gate's throughput check: a slowdown must be large, significant over the samples and over the rounds."""

from __future__ import annotations

import numpy as np

from harness.base.measurement import Measurement
from harness.gate.baseline import THROUGHPUT_KEY, BaselineError, Tables
from harness.gate.findings import Findings, Thresholds, bench_item, index


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


def _rounds_test(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value that ``a``'s rounds are slower than ``b``'s: Welch's t-test on the logs of the
    round medians (run-to-run noise is multiplicative). Two noiseless sides decide by their means."""
    from scipy.stats import ttest_ind

    la, lb = np.log(a), np.log(b)
    if la.std() == 0 and lb.std() == 0:
        return 0.0 if la.mean() > lb.mean() else 1.0
    return float(ttest_ind(la, lb, equal_var=False, alternative="greater").pvalue)


def throughput(base: Tables, cur: Tables, th: Thresholds, mode: str, out: Findings) -> tuple[str, str]:
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

    b = index(base.throughput, THROUGHPUT_KEY, "baseline throughput")
    c = index(cur.throughput, THROUGHPUT_KEY, "current throughput")
    compared = 0
    for key, row in b.iterrows():
        item = bench_item(row)
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
        base_m, cur_m = Measurement.from_row(row), Measurement.from_row(now)
        bs, cs = np.asarray(base_m.sample_s), np.asarray(cur_m.sample_s)  # an old row: its median alone
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
        br, cr = np.asarray(base_m.round_median_s), np.asarray(cur_m.round_median_s)
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


__all__ = ["comparable", "throughput"]
