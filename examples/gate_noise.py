"""How often the throughput gate false-alarms on this machine, and how much of a planted slowdown it catches.

Make N+1 bench runs of the same code first, then point this at their folder:

    for i in $(seq 0 10); do rmsprop-harness bench --suite perf-gate --out runs/r$i --no-progress --no-report; done
    python examples/gate_noise.py runs            # optionally: --quiet-from 3 --slowdown 1.3

It prints, for runs 1..N gated against run 0: pass/fail, the regressions, and what the
sample test alone (without the round-to-round test) would have flagged; then, over every
ordered pair of the runs from ``--quiet-from`` on, the false regressions and the share of
points that fail when every sample of the current run is multiplied by ``--slowdown``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.gate import gate
from harness.gate.baseline import load_run_tables


def _runs(folder: Path) -> list[Path]:
    runs = sorted(folder.glob("r*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1)
    return [r for r in runs if r.name[1:].isdigit() and (r / "throughput.parquet").is_file()]


def _slowed(tables, factor: float):
    tp = tables.throughput
    gated = tp["framework"] != "copy"
    for col in ("sample_s", "round_median_s"):
        tp.loc[gated, col] = tp.loc[gated, col].map(lambda s: list(np.asarray(s) * factor))
    tp.loc[gated, "median_s"] *= factor
    return tables, int(gated.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of bench runs r0, r1, ...")
    parser.add_argument("--quiet-from", type=int, default=0, help="first run of the pairwise comparison")
    parser.add_argument("--slowdown", type=float, default=1.3, help="planted factor for the power estimate")
    args = parser.parse_args()
    runs = _runs(args.folder)
    if len(runs) < 2:
        parser.exit(2, f"{args.folder}: needs at least two bench runs named r0, r1, ...\n")
    base = runs[0]
    ratios = []
    for run in runs[1:]:
        result = gate(load_run_tables([base]), load_run_tables([run]))
        alone_base, alone_cur = load_run_tables([base]), load_run_tables([run])
        for t in (alone_base, alone_cur):
            t.throughput["round_median_s"] = None  # the samples test alone
        alone = gate(alone_base, alone_cur)
        changes = result.changes[~result.changes["item"].str.startswith("roofline")]["change"]
        ratios += list(changes)
        print(f"{run.name} vs {base.name}: {'PASS' if result.passed else 'FAIL'}, {len(result.regressions)} "
              f"regressions ({len(alone.regressions)} by the samples test alone); medians moved "
              f"{changes.min():.2f}x-{changes.max():.2f}x")
        for r in result.regressions.itertuples():
            print(f"    {r.item}: {r.message}")
    print("median ratios over all gates (min, 5%, 50%, 95%, max):", np.round(np.percentile(ratios, [0, 5, 50, 95,
                                                                                                    100]), 3))
    quiet = [r for r in runs if int(r.name[1:]) >= args.quiet_from]
    pairs = false = compared = 0
    caught = []
    for b in quiet:
        for c in quiet:
            if b == c:
                continue
            pairs += 1
            result = gate(load_run_tables([b]), load_run_tables([c]))
            false += len(result.regressions)
            compared += int((~result.changes["item"].str.startswith("roofline")).sum())
            slowed, n = _slowed(load_run_tables([c]), args.slowdown)
            caught.append(len(gate(load_run_tables([b]), slowed).regressions) / n)
    print(f"{pairs} ordered pairs of runs {quiet[0].name}..{quiet[-1].name}: {false} false regressions in {compared} "
          f"point comparisons; every sample x{args.slowdown:g}: {np.mean(caught):.0%} of points fail per gate "
          f"({min(caught):.0%}-{max(caught):.0%})")


if __name__ == "__main__":
    main()
