"""``rmsprop-harness bench --ab BASE``: the paired A/B gate (`harness.bench.ab`), its table and its exit code.

Exit 0: no point slower; 1: a point is slower than BASE beyond the tolerance (with confidence), does
more counted work per step (``--ab-count``), or a side failed; 2: bad input (no such commit, a suite
without variants). ``inconclusive`` points are printed and named in ``ab.md`` but do not fail the
gate: they say the noise was too large for the blocks given, not that anything is slower.
"""

from __future__ import annotations

import argparse
import sys
import time

from harness.cli._parser import PROG
from harness.cli.args import split

DEFAULTS = {"suite": "ab", "out": "reports/ab"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paired A/B mode (--ab)")
    g.add_argument("--ab", metavar="BASE",
                   help="instead: time the code at BASE (a commit, branch or tag of this checkout, or a folder "
                        "holding a harness/ source tree) and the current code in the same job, interleaved, and "
                        "gate on the paired ratio (default suite: ab; default --out reports/ab)")
    g.add_argument("--blocks", type=int, default=6, metavar="N",
                   help="blocks, each with fresh workers on both sides (default 6; see docs/bench.md for the power)")
    g.add_argument("--pairs", type=int, default=20, metavar="K", help="paired samples per point and block (default 20)")
    g.add_argument("--ab-tolerance", type=float, default=0.0, metavar="X",
                   help="a slowdown up to X (0.02 = 2%%) is not a regression (default 0)")
    g.add_argument("--ab-alpha", type=float, default=0.01, metavar="P",
                   help="chance that one gate of an unchanged build flags any point (default 0.01)")
    g.add_argument("--ab-pin", action="store_true",
                   help="sample both sides of a block on one core (a neighbour's load then hits both alike; but a "
                        "framework that dispatches on a second thread, JAX, is then measured on one core)")
    g.add_argument("--ab-count", type=int, default=10, metavar="STEPS",
                   help="also count each side's work per step over STEPS steps (torch's dispatcher, XLA's cost "
                        "analysis: no noise); more ops or bytes than the base fails the gate (default 10; 0: off)")


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.base import environment, options, schema
    from harness.base.runfolder import RunFolder, prepare_output, write_text
    from harness.bench.ab import base_side, current_side, failed, points, run_ab

    options.integer(args.blocks, "--blocks", 2, 1000)
    options.integer(args.pairs, "--pairs", 3, 10000)
    options.number(args.ab_tolerance, "--ab-tolerance", 0, 1)
    options.number(args.ab_alpha, "--ab-alpha", 0, 0.5, open_low=True)
    options.integer(args.ab_count, "--ab-count", 0, 1000)
    suite, out = args.suite or DEFAULTS["suite"], args.out or DEFAULTS["out"]
    pts = points(suite, adapters=split(args.adapter, "--adapter"), devices=split(args.device, "--device"),
                 dtypes=split(args.dtype, "--dtype"))
    current = current_side()
    if args.dry_run:
        prepare_output(out, create=False)
        base = base_side(args.ab, None)
        print(f"A/B: {base.root} ({base.commit or 'a folder'}) against {current.root} ({current.commit or '?'}"
              f"{', uncommitted changes' if current.dirty else ''}); {len(pts)} points x {args.blocks} blocks x "
              f"{args.pairs} pairs; would write to {out}/ (dry run: nothing was measured)")
        return 0
    base_side(args.ab, None)  # a bad BASE is bad input before anything is written
    console = Console(stderr=True)
    progress = None if args.no_progress else (lambda line: console.print(f"  {line}", highlight=False))
    started = time.perf_counter()
    folder = RunFolder(out, "ab", len(pts))  # first: it clears the folder's old outputs (ab-src/ included)
    folder_path = folder.path
    try:
        base = base_side(args.ab, folder_path)
        env = environment.environment(suite={"name": suite}, ab={
            "base": {"ref": args.ab, "commit": base.commit, "root": str(base.root)},
            "current": {"commit": current.commit, "dirty": current.dirty, "root": str(current.root)},
            "blocks": args.blocks, "pairs": args.pairs, "tolerance": args.ab_tolerance, "alpha": args.ab_alpha,
            "count_steps": args.ab_count, "pinned": args.ab_pin})
        result = run_ab(base, current, pts, blocks=args.blocks, pairs=args.pairs, alpha=args.ab_alpha,
                        tolerance=args.ab_tolerance, threads=1, count=args.ab_count, pin=args.ab_pin,
                        progress=progress)
        table = result.points.assign(suite=suite)[schema.AB]
        environment.finish(env, [], started)
        folder.publish({"ab": table, "ab_samples": result.samples}, env, len(pts), complete=True)
    finally:
        folder.close()
    text = markdown(table, env)
    write_text(folder_path / "ab.md", text)
    print(text)
    print(f"-> {out}/ab.md, {out}/ab.parquet, {out}/ab_samples.parquet")
    if failed(result):
        print(f"{PROG}: A/B gate: FAIL (a point is slower than {args.ab} or does more counted work per step, or a "
              "side failed)", file=sys.stderr)
        return 1
    return 0


def markdown(table, env: dict) -> str:
    ab = env["ab"]
    lines = [f"# A/B: current against {ab['base']['ref']}", "",
             f"Base `{ab['base']['commit'] or ab['base']['root']}`, current `{ab['current']['commit']}`"
             f"{' with uncommitted changes' if ab['current']['dirty'] else ''}; {ab['blocks']} blocks (fresh workers "
             f"per side) x {ab['pairs']} paired samples per point; interval at {1 - ab['alpha']:.0%} over all points "
             f"together; tolerance {ab['tolerance']:.1%}; {env['cpu']} ({env['cpu_count']} cores), "
             f"{env.get('wall_seconds', 0):.0f} s.", "",
             "| adapter | variant | device | dtype | params | base ms | current ms | ratio | interval | verdict | "
             "work per step (base → current) |",
             "|---|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for r in table.itertuples():
        interval = "" if r.ratio_low != r.ratio_low else f"{r.ratio_low:.3g}-{r.ratio_high:.3g}"
        verdict = r.verdict + (f": {r.reason}" if r.reason else "")
        work = r.work
        if r.work in ("more", "less", "same"):
            work = (f"{r.work}: {r.base_ops:g} → {r.current_ops:g} ops, {r.base_bytes / 1e6:.3f} → "
                    f"{r.current_bytes / 1e6:.3f} MB ({r.counter})")
        lines.append(f"| {r.adapter} | {r.variant} | {r.device} | {r.dtype} | {r.n_params:.0e} | "
                     f"{r.base_median_s * 1e3:.4f} | {r.current_median_s * 1e3:.4f} | {r.ratio:.3f} | {interval} | "
                     f"{verdict} | {work} |")
    counts = table["verdict"].value_counts().to_dict()
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    more = table[table["work"] == "more"]
    if len(more):
        lines.append(f"More work per step on {len(more)} point(s): counted, not timed, so not noise.")
    return "\n".join(lines) + "\n"


__all__ = ["add_arguments", "main"]
