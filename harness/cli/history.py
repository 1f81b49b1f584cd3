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
    g = what.add_parser("gate", help="append a run and gate it against the last N runs of its suite on the same "
                                     "machine fingerprint (a prediction interval per series; exit 1 on a regression)")
    g.add_argument("run", metavar="RUN_DIR", help="a finished run or bench folder")
    g.add_argument("--last", type=int, default=10, metavar="N", help="the lookback window: earlier runs (default 10)")
    g.add_argument("--min-runs", type=int, default=3, metavar="K",
                   help="a series with fewer earlier runs is reported as insufficient (default 3)")
    g.add_argument("--alpha", type=float, default=0.01, metavar="P",
                   help="chance that a gate of an unchanged build flags any series (default 0.01)")
    g.add_argument("--commit", metavar="REV", help="as for append")
    for q in (a, s, g):
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
    if args.action == "gate":
        return _gate(args, store)
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


def _gate(args: argparse.Namespace, store) -> int:
    from harness.base import options
    from harness.history.lookback import failed, lookback_gate

    options.integer(args.last, "--last", 2, 100_000)
    options.integer(args.min_runs, "--min-runs", 2, 100_000)
    options.number(args.alpha, "--alpha", 0, 0.5, open_low=True)
    run_id, _ = store.append(args.run, args.commit)
    table = lookback_gate(store, run_id, last=args.last, alpha=args.alpha, minimum=args.min_runs)
    for r in table[table["verdict"] == "regression"].itertuples():
        print(f"regression: {r.series} {r.metric} {r.value:.6g} above {r.upper:.6g} (mean {r.mean:.6g}, sd {r.sd:.3g} "
              f"over the last {r.window} runs)")
    short = table[table["verdict"].str.startswith("insufficient")]
    if len(short):
        print(f"{len(short)} series with too short a history (fewer than {args.min_runs} earlier runs on this "
              "fingerprint): not judged")
    counts = table["verdict"].where(~table["verdict"].str.startswith("insufficient"), "insufficient").value_counts()
    print(f"lookback gate: {'FAIL' if failed(table) else 'PASS'} ("
          + ", ".join(f"{n} {v}" for v, n in counts.items()) + f"; window {args.last} runs, alpha {args.alpha})")
    return 1 if failed(table) else 0
