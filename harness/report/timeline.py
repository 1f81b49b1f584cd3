"""The report's semantic-timeline section: an implementation's cases across its versions
(`harness.conformance.timeline`), the versions side by side and the steps where something changed."""

from __future__ import annotations

import html
import math

import pandas as pd
from matplotlib.figure import Figure

from harness.report.plots import png

_INTRO = ("Each version runs in its own cached environment on the same gradient streams, against the same float64 "
          "reference. A step between two versions is *none* when every recorded error figure is bitwise the same, "
          "*numerics* when one differs (knob: what identify finds changed, rounding when the semantics are the "
          "same), *appeared* / *disappeared* when a version lacks the case's argument, *status* when only the "
          "verdict changed (a version that does not run here, say).")


def _plan(env: dict) -> dict | None:
    plan = env.get("timeline")
    return plan if isinstance(plan, dict) and isinstance(plan.get("versions"), list) else None


def matrix(tables: dict[str, pd.DataFrame], env: dict) -> pd.DataFrame:
    """One row per case, adapter and dtype; one column per version: its status and worst budget ratio."""
    plan, summary = _plan(env), tables.get("summary", pd.DataFrame())
    if plan is None or summary.empty:
        return pd.DataFrame()
    names = dict(zip(plan["environments"], plan["versions"], strict=True))
    rows: dict[tuple, dict] = {}
    for r in summary.itertuples():
        base, _, name = str(r.adapter).partition("@")
        if name not in names:
            continue
        cell = r.status if not isinstance(r.worst_budget_ratio, float) or math.isnan(r.worst_budget_ratio) \
            else f"{r.status} {r.worst_budget_ratio:.3g}"
        rows.setdefault((r.case, base, r.dtype), {"case": r.case, "adapter": base, "dtype": r.dtype})[
            names[name]] = cell
    return pd.DataFrame(list(rows.values()), columns=["case", "adapter", "dtype", *plan["versions"]])


def changed(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    table = tables.get("timeline", pd.DataFrame())
    if table.empty:
        return table
    rows = table[table["change"] != "none"]
    return rows[["case", "adapter", "dtype", "from_version", "to_version", "change", "status_from", "status_to",
                 "budget_from", "budget_to", "knob"]]


def figure(tables: dict[str, pd.DataFrame], env: dict) -> bytes | None:
    """Worst error in budget units per version, one line per case x adapter x dtype that ran."""
    plan, summary = _plan(env), tables.get("summary", pd.DataFrame())
    if plan is None or summary.empty:
        return None
    x = {name: i for i, name in enumerate(plan["environments"])}
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    drawn = 0
    frame = summary.assign(_base=summary["adapter"].str.partition("@")[0],
                           _env=summary["adapter"].str.partition("@")[2])
    for (case, adapter, dtype), rows in frame.groupby(["case", "_base", "dtype"], sort=False):
        rows = rows[rows["_env"].isin(x) & (rows["worst_budget_ratio"] > 0)]
        if len(rows) < 2:
            continue
        ax.plot([x[e] for e in rows["_env"]], rows["worst_budget_ratio"], marker="o", lw=1, ms=3,
                label=f"{case} {adapter} {dtype}")
        drawn += 1
    if not drawn:
        return None
    ax.set_yscale("log")
    ax.set_xticks(range(len(plan["versions"])), plan["versions"])
    ax.set_xlabel(f"{plan.get('package', '')} version")
    ax.set_ylabel("worst error (rounding budgets)")
    if drawn <= 12:
        ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    return png(fig)


def markdown_section(tables: dict[str, pd.DataFrame], env: dict) -> list[str]:
    from harness.report.tables import md_table

    plan = _plan(env)
    if plan is None or "timeline" not in tables:
        return []
    out = ["## Semantic timeline", "", f"`{plan['implementation']}` at versions {', '.join(plan['versions'])}. "
           + _INTRO, ""]
    steps = changed(tables)
    out += ["No change between any two versions: every case ran bitwise the same." if steps.empty
            else md_table(steps), ""]
    grid = matrix(tables, env)
    if len(grid):
        out += ["Status and worst budget ratio per version:", "", md_table(grid), ""]
    return out


def html_section(tables: dict[str, pd.DataFrame], env: dict, table, img) -> list[str]:
    plan = _plan(env)
    if plan is None or "timeline" not in tables:
        return []
    steps = changed(tables)
    return ["<h2>Semantic timeline</h2>",
            f"<p><code>{html.escape(plan['implementation'])}</code> at versions "
            f"{html.escape(', '.join(plan['versions']))}. {html.escape(_INTRO)}</p>",
            "<p>No change between any two versions: every case ran bitwise the same.</p>" if steps.empty
            else table(steps),
            img(figure(tables, env), "timeline", "worst error in rounding budgets per version (log scale)"),
            table(matrix(tables, env))]
