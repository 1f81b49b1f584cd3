"""What the commands print on a terminal: the report's own tables (`harness.report`), in rich."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness import report

STYLE = {"ok": "green", "fail": "bold red", "error": "bold red", "degenerate": "bold magenta", "skipped": "yellow",
         "unsupported": "dim"}


def status_table(summary: pd.DataFrame):
    """One row per case and adapter, one column per dtype@device (`report.status_cells`)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    columns, cells = report.status_cells(summary)
    for name in ("case", "adapter", *columns):
        table.add_column(name)
    for (case, adapter), row in cells.items():
        shown = [f"[{STYLE.get(row[c][0], 'bold red')}]{escape(row[c][1])}[/]" if c in row else "" for c in columns]
        table.add_row(escape(str(case)), escape(str(adapter)), *shown)
    return table


def _cases(cases: list[str]) -> str:
    shown = 2 if all(len(str(c)) <= 40 for c in cases[:2]) else 1  # matrix case names are long
    more = f" and {len(cases) - shown} more" if len(cases) > shown else ""
    return ", ".join(map(str, cases[:shown])) + more


def notes(run: report.Run, limit: int = 20) -> list[str]:
    """One line per failing, erroring or degenerate case and adapter (`report.failing`); one line per distinct
    unsupported or skipped reason and adapter (`report.quiet`)."""
    lines = [f"  {r.case} / {r.adapter} [{r.where.replace(', ', ',')}]: {r.status}: {r.reason}"
             for r in report.failing(run).itertuples()]
    for r in report.quiet(run).itertuples():
        text = r.reason if str(r.reason).startswith(r.status) else f"{r.status}: {r.reason}"
        lines.append(f"  {r.adapter} [{r.where}] in {_cases(r.cases)}: {text}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more (see summary.parquet)"]
    return lines


def warning_lines(run: report.Run, limit: int = 20) -> list[str]:
    """One line per distinct silent rewrite (`report.warnings`)."""
    lines = [f"  warning: {r.warning} [{r.where}]" for r in report.warnings(run).itertuples()]
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more warnings (see summary.parquet)"]
    return lines


def bench_table(tp: pd.DataFrame):
    """One row per measured point: median step time with its IQR, GB/s and the roofline fraction."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("adapter", "variant", "device", "dtype", "params", "tensors", "step ms (IQR)", "GB/s", "roofline",
                "compile s"):
        table.add_column(col, justify="right" if col in ("params", "tensors", "GB/s", "roofline") else "left")
    for r in tp[tp["status"] == "ok"].itertuples():
        table.add_row(r.adapter, r.variant, r.device, r.dtype, f"{r.n_params:.0e}", str(r.n_tensors),
                      f"{r.median_s * 1e3:.4g} ({r.iqr_s * 1e3:.2g})", f"{r.gb_per_s:.3g}",
                      f"{r.roofline_fraction:.0%}" if r.roofline_fraction == r.roofline_fraction else "",
                      f"{r.compile_s:.2g}")
    return table


def frame_table(frame: pd.DataFrame, title: str):
    from rich.table import Table

    table = Table(title=title, box=None, pad_edge=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table


def _cell(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


__all__ = ["bench_table", "frame_table", "notes", "status_table", "warning_lines"]
