"""``rmsprop-harness gate``: a run against a baseline, exit 0 pass, 1 regression or incomplete, 2 bad input."""

from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("gate", help="compare a run with a baseline: exit 0 pass, 1 regression, 2 bad input")
    p.add_argument("--baseline", required=True, metavar="DIR", help="a folder written by baseline save")
    p.add_argument("--current", required=True, nargs="+", metavar="RUN_DIR",
                   help="the run folder(s) to judge: a conformance run and/or a bench folder")
    p.add_argument("--out", default=None, metavar="DIR", help="where gate.md and gate.json go (default: the first "
                                                               "RUN_DIR)")
    p.add_argument("--throughput", choices=("auto", "always", "off"), default="auto",
                   help="auto: compare throughput only between runs from the same machine type and versions "
                        "(default); always: compare anyway; off: divergence only")
    p.add_argument("--factor", type=float, default=2.0,
                   help="exact mode: divergence figures may grow to this multiple of the baseline (default 2)")
    p.add_argument("--min-effect", type=float, default=0.10,
                   help="throughput: the smallest slowdown of the median that counts (default 0.10)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="throughput: Mann-Whitney U significance level (default 0.01)")
    p.add_argument("--subset", action="store_true",
                   help="the current run was filtered (--case, --dtype, --adapter, --device): compare only the rows "
                        "it has (without this, a filtered run fails closed)")
    p.add_argument("--update-baseline", action="store_true",
                   help="after an intended change: show the diff and replace the baseline with the current run")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.gate import Thresholds, gate, markdown, write
    from harness.gate.baseline import BaselineError, load_baseline, load_run_tables, write_baseline

    thresholds = Thresholds(args.factor, min_effect=args.min_effect, alpha=args.alpha)
    baseline = load_baseline(args.baseline)
    current = load_run_tables(args.current)
    result = gate(baseline, current, thresholds, args.throughput, subset=args.subset)
    if args.update_baseline:
        if not result.complete:
            raise BaselineError(f"{', '.join(args.current)}: incomplete ({result.incomplete}); not saved as the "
                                "baseline")
        write_baseline(current, args.baseline, list(args.current))
        result.updated = args.baseline
    md, js = write(result, args.out or args.current[0])
    print(markdown(result), end="")
    print(f"\n{md}, {js}")
    return result.exit_code
