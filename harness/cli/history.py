"""``rmsprop-harness history``: every run and bench in one store; series over commits, their steps and plots."""

from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("history", help="append runs to the results store; plot each figure over commits and name the "
                                       "commit of each step")
    what = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    a = what.add_parser("append", help="add finished run or bench folders to the store (idempotent)")
    a.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by run or bench")
    a.add_argument("--commit", metavar="REV", help="file the runs under this commit instead of the git revision in "
                                                   "their env.json (code that lives in another repository)")
    s = what.add_parser("show", help="steps of every series (change points), steps.csv, history.html and PNGs")
    s.add_argument("--out", default="reports/history", metavar="DIR", help="where history.html, steps.csv and png/ "
                                                                            "go (default: reports/history)")
    s.add_argument("--limit", type=int, default=24, help="plot every series with a step and up to this many others "
                                                         "(default 24)")
    for q in (a, s):
        q.add_argument("--store", metavar="PATH", help="the DuckDB file (default: $RMSPROP_HARNESS_HISTORY or "
                                                       "reports/history.duckdb)")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.history.store import Store, store_path

    store = Store(store_path(args.store))
    if args.action == "append":
        for run in args.runs:
            run_id, added = store.append(run, args.commit)
            print(f"{run}: {'already in' if not added else f'{added} points added to'} {store.path} (run {run_id})")
        return 0
    from pathlib import Path

    from harness.base import options
    from harness.base.runfolder import prepare_output, refuse_symlink
    from harness.history.render import render

    options.integer(args.limit, "--limit", 0, 10_000)
    out = Path(args.out)
    refuse_symlink(out, "output folder")
    if not (out / "history.html").is_file():  # an earlier history is replaced; anything else must be new or empty
        out = prepare_output(args.out)
    found, pngs = render(store.frame(), store.runs(), out, args.limit)
    for r in found.itertuples():
        print(f"step: {r.series} {r.metric} x{r.ratio:.4g} ({r.before:.4g} -> {r.after:.4g}, p={r.p_value:.3g}) first "
              f"at {r.first_commit[:12]} (after {r.previous_commit[:12]}) on {r.fingerprint[:12]}")
    print(f"{len(found)} steps; {out}/history.html, {out}/steps.csv, {len(pngs)} PNGs in {out}/png/")
    return 0
