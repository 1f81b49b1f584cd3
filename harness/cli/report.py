"""``rmsprop-harness report RUN_DIR``: report.md, report.html and CSV exports for a run folder."""

from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="write report.md, report.html and CSV exports for a run folder")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by rmsprop-harness run or bench")
    return p


def main(args: argparse.Namespace) -> int:
    """Exit 1 for an interrupted run (the report shows what finished), else 0: the report was written."""
    from harness.report import load_run, write_report

    written = write_report(args.run_dir)
    print(", ".join(str(p) for p in written.values()))
    run = load_run(args.run_dir)
    if not run.complete:
        print(f"INCOMPLETE: {run.progress()} (the run was interrupted); the report shows what finished")
        return 1
    return 0
