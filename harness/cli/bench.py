"""``rmsprop-harness bench``: optimizer-step throughput of every adapter against the measured roofline."""

from __future__ import annotations

import argparse
import sys

from harness.cli import bench_ab
from harness.cli._parser import PROG
from harness.cli.args import split


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="optimizer-step throughput of every adapter against the measured copy "
                                     "bandwidth (roofline)")
    p.add_argument("--suite", default=None, metavar="NAME|PATH", help="a bench suite (default: perf; with --ab: ab)")
    p.add_argument("--adapter", action="append", metavar="NAME", help="only these adapters (names or families)")
    p.add_argument("--device", action="append", metavar="DEVICE", help="cpu, gpu or auto (default: each entry's "
                                                                       "own)")
    p.add_argument("--dtype", action="append", metavar="DTYPE", help="float32, float64, float16, bfloat16")
    p.add_argument("--min-time", type=float, default=None, metavar="S",
                   help="minimum measured seconds per point (default: the suite's, 0.2)")
    p.add_argument("--repeats", type=int, default=None, metavar="N", help="minimum samples per point (default 7)")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="measure the whole suite N times, each round in fresh workers, and pool the samples "
                        "(default: the suite's, 1); the gate then sees the run-to-run noise")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="intra-op threads per framework (default: the suite's, else each framework's own)")
    p.add_argument("--history", nargs="?", const="", metavar="STORE",
                   help="append the bench to the results store (rmsprop-harness history; default store "
                        "$RMSPROP_HARNESS_HISTORY or reports/history.duckdb)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for throughput.parquet, env.json and the report (default: reports/bench; with "
                        "--ab: reports/ab)")
    p.add_argument("--overhead", action="store_true",
                   help="instead: the harness against a bare loop (torch foreach, 1e6 and 1e7 parameters)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--no-report", action="store_true", help="do not write report.md, report.html and the CSV")
    p.add_argument("--dry-run", action="store_true",
                   help="load and check the suite and options, print the jobs each worker would measure; measure "
                        "nothing, write nothing")
    bench_ab.add_arguments(p)
    return p


def _layout(label: str, shapes: dict) -> str:
    import math

    n = sum(math.prod(s) for s in shapes.values())
    return f"{n:.0e} params" if label == "model" else label


def _dry_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.base import options
    from harness.bench import prepare

    if args.overhead:
        options.number(args.min_time, "--min-time", 0, 60, open_low=True)
        print(f"overhead: the harness against a bare loop, torch foreach at 1e6 and 1e7 parameters, 300 paired "
              f"samples each (min time {args.min_time or 0.5:g} s); would write {args.out}/overhead.csv (dry run: "
              "nothing was measured or written)")
        return 0
    ready = prepare(args.suite, adapters=split(args.adapter, "--adapter"), devices=split(args.device, "--device"),
                    dtypes=split(args.dtype, "--dtype"), min_time=args.min_time, repeats=args.repeats,
                    rounds=args.rounds, threads=args.threads)
    suite, jobs = ready.suite, ready.jobs
    table = Table("bench", "adapter", "variants", "devices", "dtypes", "layouts", "min_time", "repeats",
                  title=f"bench suite {suite.name}: plan")
    for j in jobs:
        devices_text = j.devices if isinstance(j.devices, str) else ",".join(j.devices)
        table.add_row(j.bench, j.adapter, ",".join(j.variants) if j.variants else "all", devices_text,
                      ",".join(j.dtypes), ", ".join(_layout(label, shapes) for label, shapes in j.layouts),
                      f"{j.min_time:g} s", str(j.repeats))
    Console(width=140).print(table)
    rounds, threads = ready.rounds, ready.threads
    print(f"{suite.name}: {len(jobs)} jobs, {rounds} round{'s' if rounds > 1 else ''}, "
          f"{threads or 'default'} thread{'s' if threads != 1 else ''} per framework; would write to {args.out}/ "
          "(dry run: nothing was measured or written)")
    return 0


def _overhead(args: argparse.Namespace) -> int:
    from harness.bench import overhead_summary, run_overhead

    summary = overhead_summary(run_overhead(min_time=args.min_time or 0.5, out=args.out))
    what = {"timer": "the harness's timer vs a bare loop, same optimizer",
            "setup": "the harness-built vs a hand-built optimizer, both bare-timed",
            "control": "control: two hand-built optimizers, both bare-timed (memory placement alone)"}
    for r in summary.itertuples():
        print(f"torch foreach, {r.n_params:.0e} parameters, {what[r.kind]}: ratio {r.ratio:.4f} (IQR "
              f"{r.ratio_q1:.3f}-{r.ratio_q3:.3f}, {r.pairs} paired samples; {r.harness_ms:.3f} vs "
              f"{r.bare_ms:.3f} ms per step)")
    for r in summary.drop_duplicates("n_params").itertuples():
        print(f"torch foreach, {r.n_params:.0e} parameters: the harness's figure {r.figure_ms:.3f} ms, a bare "
              f"loop's median {r.bare_figure_ms:.3f} ms (unpaired, consecutive: drift included)")
    judged = summary[summary["kind"] != "control"]
    ok = bool(((judged["ratio"] - 1).abs() <= 0.03).all())
    print(f"overhead {'within' if ok else 'NOT within'} 3% -> {args.out}/overhead.csv")
    return 0 if ok else 1


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.bench import run_bench
    from harness.cli.console import bench_table

    if args.ab is not None:
        if args.overhead or args.history is not None:
            from harness.bench.ab import ABError

            raise ABError("--ab takes neither --overhead nor --history (an A/B folder is one job's comparison, "
                          "not a run of the history)")
        return bench_ab.main(args)
    args.suite, args.out = args.suite or "perf", args.out or "reports/bench"
    if args.dry_run:
        return _dry_run(args)
    if args.overhead:
        return _overhead(args)
    devices = split(args.device, "--device")
    console = Console(stderr=True)

    def progress(row: dict) -> None:
        if not args.no_progress:
            what = f"{row.get('adapter')} {row.get('variant', '')} {row.get('device', '')} {row.get('n_params', '')}"
            rnd = f" (round {row['round'] + 1})" if row.get("round") else ""
            console.print(f"  {what}: {row.get('status')}{rnd}", highlight=False)

    result = run_bench(args.suite, adapters=split(args.adapter, "--adapter"), devices=devices,
                       dtypes=split(args.dtype, "--dtype"), min_time=args.min_time, repeats=args.repeats, out=args.out,
                       progress=progress, rounds=args.rounds, threads=args.threads)
    Console(width=max(130, Console().width)).print(bench_table(result.throughput))
    tp = result.throughput
    for r in tp[tp["status"] != "ok"].drop_duplicates(["adapter", "status", "reason"]).itertuples():
        print(f"  {r.adapter} {'' if r.variant != r.variant else r.variant}: {r.status}: {r.reason}")
    counts = tp["status"].value_counts().to_dict()
    print(f"{result.env['suite']['name']}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f" in {result.env['wall_seconds']:.0f} s -> {args.out}/throughput.parquet")
    if not args.no_report:
        from harness.report import write_report

        write_report(args.out)
        print(f"report: {args.out}/report.md, {args.out}/report.html (+ throughput.csv)")
    if args.history is not None:
        from harness.history.store import Store, store_path

        store = Store(store_path(args.history or None))
        _, added = store.append(args.out)
        print(f"history: {added} points appended to {store.path}")
    for device in result.unmeasured:
        print(f"{PROG}: error: --device {device}: nothing was measured on it (no {device} visible; --device auto "
              "measures where a device is visible)", file=sys.stderr)
        return 2
    return 1 if (tp["status"] == "error").any() else 0
