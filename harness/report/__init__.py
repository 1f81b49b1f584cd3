"""`rmsprop-harness report RUN_DIR`: the run folder's tables as ``report.md``, ``report.html`` and CSV.

* ``report.md``: compact, for a CI job summary or a pull request: the verdict first,
  then the failing cases, then the cross-framework parity table (presets that are
  bitwise identical in a scenario are folded into one row), then the silent rewrites.
* ``report.html``: one self-contained file (PNG figures embedded as data URIs, no
  scripts, no external resources): verdict, failing cases, the status matrix,
  parity heat maps and attribution, divergence vs step per case with the tolerance
  line, ULP histograms, the seed document's contour picture, warnings and the
  environment.
* ``<table>.csv`` next to every ``<table>.parquet``.

`write_report` is what ``rmsprop-harness run`` calls at the end of a run.
"""

from __future__ import annotations

from pathlib import Path

from harness.base import runfolder
from harness.report.html import html_report, status_matrix
from harness.report.load import REPORT_TABLES, ReportError, Run, load_run
from harness.report.markdown import markdown
from harness.report.tables import (
    comparison_size,
    failing,
    folded_pairs,
    md_table,
    quiet,
    roofline_table,
    status_cells,
    throughput_table,
    warnings,
)


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write the CSV exports, ``report.md`` and ``report.html`` into ``run_dir``; their paths."""
    run = load_run(run_dir)
    written = {}
    for name, frame in run.tables.items():
        if len(frame.columns):
            written[f"{name}.csv"] = runfolder.write_text(run.path / f"{name}.csv", frame.to_csv(index=False))
    written["report.md"] = runfolder.write_text(run.path / "report.md", markdown(run))
    written["report.html"] = runfolder.write_text(run.path / "report.html", html_report(run))
    return written


__all__ = ["REPORT_TABLES", "ReportError", "Run", "comparison_size", "failing", "folded_pairs", "html_report",
           "load_run", "markdown", "md_table", "quiet", "roofline_table", "status_cells", "status_matrix",
           "throughput_table", "warnings", "write_report"]
