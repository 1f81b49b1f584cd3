"""The report's tables and lines, shared by report.md, report.html and the console."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.base import schema
from harness.report.load import Run


def verdict_line(run: Run) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n) or "no rows"
    wall = run.env.get("wall_seconds")
    took = f" in {wall:.0f} s" if isinstance(wall, int | float) else ""
    if not run.complete:
        return f"INCOMPLETE ({run.progress()}: the run was interrupted): {counts}{took}"
    return f"{'PASS' if run.passed else 'FAIL'}: {counts}{took}"


def failing(run: Run) -> pd.DataFrame:
    """One row per failing, erroring or degenerate case x adapter x reason, with where it happened."""
    summary = run.summary.assign(status=run.statuses())
    bad = summary[~summary["status"].isin(schema.PASSING)]
    rows = []
    for (case, adapter, status, reason), g in bad.groupby(["case", "adapter", "status", "reason"], sort=False):
        where = ", ".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in g.itertuples()))
        rows.append({"case": case, "adapter": adapter, "where": where, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=["case", "adapter", "where", "status", "reason"])


def quiet(run: Run) -> pd.DataFrame:
    """One row per adapter, status and reason of the unsupported and skipped rows (a matrix suite repeats
    them over many cases), with the cases and where."""
    summary = run.summary
    rows = []
    shown = summary[summary["status"].isin(["unsupported", "skipped"])]
    for (adapter, status, reason), g in shown.groupby(["adapter", "status", "reason"], sort=False):
        rows.append({"adapter": adapter, "where": ",".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in
                                                                          g.itertuples())),
                     "cases": list(dict.fromkeys(g["case"])), "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=["adapter", "where", "cases", "status", "reason"])


def status_cells(summary: pd.DataFrame) -> tuple[list[str], dict[tuple[str, str], dict[str, tuple[str, str, str]]]]:
    """The status matrix's columns (dtype@device) and cells: (case, adapter) -> column -> (status, text, reason);
    the text is the status with the share of its tolerance used."""
    columns = list(dict.fromkeys(f"{r.dtype}@{r.device}" for r in summary.itertuples()))
    cells: dict[tuple[str, str], dict[str, tuple[str, str, str]]] = {}
    for r in summary.itertuples():
        text = str(r.status)
        used = getattr(r, "tolerance_used", float("nan"))
        if r.status in ("ok", "fail") and pd.notna(used):
            text += f" {used:.0%}" if used < 10 else f" {used:.3g}x"
        cells.setdefault((r.case, r.adapter), {})[f"{r.dtype}@{r.device}"] = (str(r.status), text, str(r.reason))
    return columns, cells


def warnings(run: Run) -> pd.DataFrame:
    """Each distinct silent rewrite with the adapters and cases it appears in."""
    seen: dict[str, dict[str, list[str]]] = {}
    for r in run.summary.itertuples():
        for text in filter(None, str(r.warnings or "").split(schema.WARNING_SEPARATOR)):
            cases = seen.setdefault(text, {}).setdefault(r.adapter, [])
            if r.case not in cases:
                cases.append(r.case)
    rows = [{"warning": text, "where": "; ".join(f"{a}: {', '.join(map(str, c[:3]))}{' ...' if len(c) > 3 else ''}"
                                                  for a, c in where.items())} for text, where in seen.items()]
    return pd.DataFrame(rows, columns=["warning", "where"])


def folded_pairs(run: Run, scenario: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The scenario's pairs between representatives of bitwise-identical groups, with each pair's
    three largest knob effects; and the groups (representative -> members)."""
    pairs = run.tables["parity"]
    pairs = pairs[pairs["scenario"] == scenario]
    groups: dict[str, list[str]] = {}
    rep: dict[str, str] = {}
    for name in dict.fromkeys([*pairs["a"], *pairs["b"]]):
        twin = next((r for r in groups if _identical(pairs, r, name)), None)
        if twin is None:
            groups[name] = [name]
        else:
            groups[twin].append(name)
        rep[name] = twin or name
    attribution = run.tables["attribution"]
    rows = []
    for r in pairs.itertuples():
        if rep[r.a] != r.a or rep[r.b] != r.b:
            continue
        knobs = attribution[(attribution["scenario"] == scenario) & (attribution["a"] == r.a)
                            & (attribution["b"] == r.b) & (attribution["knob"] != "*")] if len(attribution) else None
        top = "" if knobs is None or knobs.empty else ", ".join(
            f"{k.label} {pct(k.share)}" for k in knobs.sort_values("share", ascending=False).head(3).itertuples())
        rows.append({"pair": f"{_group(groups, r.a)} vs {_group(groups, r.b)}", "divergence": r.divergence,
                     "worst scale": r.scale, "verdict": r.verdict, "largest shares": top or r.differing})
    return pd.DataFrame(rows, columns=["pair", "divergence", "worst scale", "verdict", "largest shares"]), groups


def _identical(pairs: pd.DataFrame, a: str, b: str) -> bool:
    hit = pairs[((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))]
    return bool(len(hit)) and hit["verdict"].iloc[0] == "identical"


def _group(groups: dict[str, list[str]], name: str) -> str:
    members = groups[name]
    return name if len(members) == 1 else f"{name} (= {', '.join(members[1:])})"


def pct(share: float) -> str:
    if share != share:
        return "n/a"
    return "0%" if abs(share) < 0.005 else f"{share:.0%}"


def fmt(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


# ------------------------------------------------------------------- markdown
def _md_cell(value: Any) -> str:
    text = fmt(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;") or " "  # "<" could open an HTML tag; ">" is literal in a cell


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped, one line per row)."""
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])



def comparison_size(tp: pd.DataFrame) -> int | None:
    """The model-layout size measured by the most adapter variants (the largest of those): one size at
    which every adapter is compared, in the memory-bound regime when the suite reaches it."""
    ok = tp[(tp["status"] == "ok") & (tp["framework"] != "copy") & (tp["layout"] == "model")]
    if ok.empty:
        return None
    counts = ok.groupby("n_params").apply(lambda g: len(g.drop_duplicates(["adapter", "variant"])))
    return int(counts[counts == counts.max()].index.max())


def throughput_table(tp: pd.DataFrame, common_size: bool = False) -> pd.DataFrame:
    """Measured points as a readable table; ``common_size``: only the `comparison_size`, best first."""
    ok = tp[(tp["status"] == "ok") & (tp["framework"] != "copy")]
    if common_size:
        ok = ok[(ok["layout"] == "model") & (ok["n_params"] == comparison_size(tp))].sort_values(
            ["device", "dtype", "roofline_fraction"], ascending=[True, True, False])
    return pd.DataFrame({
        "bench": ok["bench"], "adapter": ok["adapter"], "variant": ok["variant"], "device": ok["device"],
        "dtype": ok["dtype"],
        "params": [f"{n:.0e}" for n in ok["n_params"]], "tensors": ok["n_tensors"],
        "step ms (IQR)": [f"{m * 1e3:.4g} ({i * 1e3:.2g})" for m, i in zip(ok["median_s"], ok["iqr_s"], strict=True)],
        "GB/s": [f"{g:.3g}" for g in ok["gb_per_s"]],
        "of roofline": [f"{f:.0%}" if f == f else "" for f in ok["roofline_fraction"]],
        "compile s": [f"{c:.2g}" for c in ok["compile_s"]],
        "peak RSS MB": [f"{m / 1e6:.0f}" if m == m else "" for m in ok["peak_mem_bytes"].astype(float)],
    })


def roofline_table(tp: pd.DataFrame) -> pd.DataFrame:
    """The memory kernels measured at the comparison size: what the roofline is made of."""
    size = comparison_size(tp)
    rows = tp[(tp["status"] == "ok") & (tp["framework"] == "copy") & (tp["n_params"] == size)]
    return pd.DataFrame({"kernel": rows["adapter"] + " " + rows["variant"], "device": rows["device"],
                         "dtype": rows["dtype"], "elements": [f"{n:.0e}" for n in rows["n_params"]],
                         "bytes per element": rows["bytes_per_param"], "GB/s": [f"{g:.3g}" for g in rows["gb_per_s"]],
                         "threads": rows["threads"], "what": rows["description"]})


def roofline_line(tp: pd.DataFrame) -> str:
    copies = tp[(tp["status"] == "ok") & (tp["framework"] == "copy")]
    if copies.empty:
        return "no copy bandwidth measured"
    parts = []
    for (device, dtype), g in copies.groupby(["device", "dtype"]):
        top = g[g["n_params"] == g["n_params"].max()]
        best = top.loc[top["gb_per_s"].idxmax()]
        parts.append(f"{device} {dtype}: {best['gb_per_s']:.3g} GB/s at {best['n_params']:.0e} elements "
                     f"({best['adapter']} {best['variant']})")
    return "; ".join(parts)




def scenarios(run: Run) -> dict[str, str]:
    """Scenario name -> one line saying what it compares."""
    info = run.env.get("parity", {})
    out = {}
    for name in dict.fromkeys(run.tables["parity"]["scenario"]):
        s = info.get(name, {})
        settings = ", ".join(f"{k}={v}" for k, v in s.get("settings", {}).items()) or "each framework's defaults"
        skipped = "; ".join(f"{p}: {why}" for p, why in s.get("skipped", {}).items())
        description = s.get("description", "").rstrip(".")
        out[name] = (f"{description + '. ' if description else ''}Settings: {settings}; {s.get('steps', '?')} steps of "
                     f"{s.get('stream', '?')} gradients (seed {s.get('seed', '?')})."
                     + (f" Not comparable: {skipped}." if skipped else "")).strip()
    return out


def env_line(run: Run) -> str:
    env = run.env
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    git = env.get("git", {})
    rev = (git.get("revision") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
    return (f"Python {env.get('python', '?')} on {env.get('platform', '?')}, {env.get('cpu', '?')} "
            f"({env.get('cpu_count', '?')} cores); {packages}; git {rev}; started {env.get('started', '?')}.")
