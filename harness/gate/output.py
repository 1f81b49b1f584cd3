"""The gate's verdict as Markdown (a CI job summary) and JSON, written into the run folder safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.base import runfolder
from harness.gate.baseline import GATED_FIGURES

if TYPE_CHECKING:
    from harness.gate import GateResult


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
        head = (f"## rmsprop-harness gate: {result.verdict}"
                + (f" ({result.incomplete})" if result.incomplete else
                   f" ({n} regression{'s' if n != 1 else ''})" if n else ""))
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
    if result.mode_reason:
        lines.append(f"- comparison: **{result.mode}**: {result.mode_reason}")
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
    exact = (f"- divergence, **exact** mode (same machine fingerprint and versions): each of "
             f"{', '.join(GATED_FIGURES)} at every recorded step may grow to {th.factor:g}x its baseline value "
             f"(values under {th.ulp_floor:g} ULP or {th.budget_floor:g} budget unit count as that much: below it "
             "is the output's own rounding); runs are bitwise reproducible there, so a change is the code's or the "
             "framework's, not noise")
    portable = (f"- divergence, **portable** mode (another machine or versions): statuses must hold; each budget "
                f"figure as its share of the tolerance may not exceed {th.near:.0%} while being over "
                f"{th.share_factor:g}x its baseline share (the tolerance bounds any rounding order, so a correct "
                "row stays under 100% on every machine; raw ULPs are listed, not gated)")
    lines += ["", "### Thresholds", "", exact if result.mode == "exact" else portable,
              f"- parity: a verdict change, or a divergence over {th.factor:g}x the baseline (floor: one float64 "
              "budget)",
              f"- throughput: median step time slower by more than {th.min_effect:.0%} and a one-sided Mann-Whitney "
              f"U test over the repeat samples with p < {th.alpha:g}, and, when both runs have several rounds, a "
              f"one-sided Welch t-test over the log round medians with p < {th.alpha:g}; same machine type and "
              "versions only unless --throughput always",
              "- missing data (a case, a step, a figure, a bench point) fails closed"]
    return "\n".join(lines) + "\n"


def write(result: GateResult, out: str | Path) -> tuple[Path, Path]:
    """``gate.md`` and ``gate.json`` in ``out`` (a run folder, or a new one); never through a symlink."""
    folder = runfolder.prepare_output(out)
    md = runfolder.write_text(folder / "gate.md", markdown(result, limit=None))
    js = runfolder.write_text(folder / "gate.json", json.dumps(result.as_dict(), indent=2,
                                                               default=_json_default) + "\n")
    return md, js


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


__all__ = ["markdown", "write"]
