"""The ``rmsprop-harness`` command line.

Bad input (`reference.errors.InputError`) prints one ``rmsprop-harness: error: ...`` line on
stderr and exits 2, with nothing lost; anything else is a bug and keeps its traceback. Exit
codes: 0 pass, 1 a failing, erroring, degenerate or incomplete result, 2 bad input, 130 Ctrl-C,
143 SIGTERM (the run folder then says it is incomplete, and no worker outlives the driver).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from reference.errors import InputError

from . import __version__
from . import cliargs as cli_args

_PROG = "rmsprop-harness"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; keep one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rmsprop-harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ex = sub.add_parser("explain", help="show the resolved semantics of presets side by side")
    ex.add_argument("presets", nargs="*", metavar="PRESET",
                    help="preset name, optionally with arguments: torch:lr=0.01,momentum=0.9 "
                         "(default: every preset with its framework defaults)")
    ex.add_argument("--diff", action="store_true", help="show only the knobs that differ")
    ex.add_argument("--format", choices=("table", "markdown", "json"), default="table")

    run = sub.add_parser("run", help="run a conformance suite: every framework against the float64 reference")
    run.add_argument("--suite", default="default", metavar="NAME|PATH",
                     help="a built-in suite (default, seed, edge, ...) or a suite TOML file (default: default)")
    run.add_argument("--adapter", action="append", metavar="NAME",
                     help="only these adapters: names or families (torch = torch.single, torch.foreach, ...); "
                          "a user adapter by entry-point name or as package.module:factory joins every case "
                          "it fits; repeat or separate with commas")
    run.add_argument("--device", action="append", metavar="DEVICE",
                     help="run on these devices instead of the cases' own: cpu, gpu (cuda), or auto (cpu, plus a gpu "
                          "when one is visible); an explicit device nothing could run on is an error (exit 2)")
    run.add_argument("--dtype", action="append", metavar="DTYPE",
                     help="run these dtypes instead of the cases' own: float16, bfloat16, float32, float64")
    run.add_argument("--case", action="append", metavar="PATTERN", help="only cases whose name matches")
    run.add_argument("--out", default="reports/latest", metavar="DIR",
                     help="run folder for divergence.parquet, summary.parquet, env.json (default: reports/latest)")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="worker processes at a time (default: the number of cores)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="do not write report.md, report.html and the CSVs")

    be = sub.add_parser("bench", help="optimizer-step throughput of every adapter against the measured copy "
                                      "bandwidth (roofline)")
    be.add_argument("--suite", default="perf", metavar="NAME|PATH", help="a bench suite (default: perf)")
    be.add_argument("--adapter", action="append", metavar="NAME", help="only these adapters (names or families)")
    be.add_argument("--device", action="append", metavar="DEVICE",
                    help="cpu, gpu or auto (default: each entry's own)")
    be.add_argument("--dtype", action="append", metavar="DTYPE", help="float32, float64, float16, bfloat16")
    be.add_argument("--min-time", type=float, default=None, metavar="S",
                    help="minimum measured seconds per point (default: the suite's, 0.2)")
    be.add_argument("--repeats", type=int, default=None, metavar="N", help="minimum samples per point (default 7)")
    be.add_argument("--rounds", type=int, default=None, metavar="N",
                    help="measure the whole suite N times, each round in fresh workers, and pool the samples "
                         "(default: the suite's, 1); the gate then sees the run-to-run noise")
    be.add_argument("--threads", type=int, default=None, metavar="N",
                    help="intra-op threads per framework (default: the suite's, else each framework's own)")
    be.add_argument("--out", default="reports/bench", metavar="DIR",
                    help="folder for throughput.parquet, env.json and the report (default: reports/bench)")
    be.add_argument("--overhead", action="store_true",
                    help="instead: the harness against a bare loop (torch foreach, 1e6 and 1e7 parameters)")
    be.add_argument("--no-progress", action="store_true", help="no progress line")
    be.add_argument("--no-report", action="store_true", help="do not write report.md, report.html and the CSV")

    bl = sub.add_parser("baseline", help="store a run as the baseline the gate compares against")
    bl_sub = bl.add_subparsers(dest="baseline_command", required=True, parser_class=_Parser)
    save = bl_sub.add_parser("save", help="store run folders' summary, divergence, parity and throughput tables "
                                          "and their env (small enough to commit)")
    save.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="a conformance run folder and/or a bench folder")
    save.add_argument("--to", default="reports/baseline", metavar="DIR",
                      help="baseline folder, replaced as a whole (default: reports/baseline)")

    ga = sub.add_parser("gate", help="compare a run with a baseline: exit 0 pass, 1 regression, 2 bad input")
    ga.add_argument("--baseline", required=True, metavar="DIR", help="a folder written by baseline save")
    ga.add_argument("--current", required=True, nargs="+", metavar="RUN_DIR",
                    help="the run folder(s) to judge: a conformance run and/or a bench folder")
    ga.add_argument("--out", default=None, metavar="DIR",
                    help="where gate.md and gate.json go (default: the first RUN_DIR)")
    ga.add_argument("--throughput", choices=("auto", "always", "off"), default="auto",
                    help="auto: compare throughput only between runs from the same machine type and versions "
                         "(default); always: compare anyway; off: divergence only")
    ga.add_argument("--factor", type=float, default=2.0,
                    help="divergence figures may grow to this multiple of the baseline (default 2)")
    ga.add_argument("--min-effect", type=float, default=0.10,
                    help="throughput: the smallest slowdown of the median that counts (default 0.10)")
    ga.add_argument("--alpha", type=float, default=0.01,
                    help="throughput: Mann-Whitney U significance level (default 0.01)")
    ga.add_argument("--subset", action="store_true",
                    help="the current run was filtered (--case, --dtype, --adapter, --device): compare only the "
                         "rows it has (without this, a filtered run fails closed)")
    ga.add_argument("--update-baseline", action="store_true",
                    help="after an intended change: show the diff and replace the baseline with the current run")

    rep = sub.add_parser("report", help="write report.md, report.html and CSV exports for a run folder")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by rmsprop-harness run")

    tr = sub.add_parser("translate", help="another framework's arguments for the same RMSprop, verified numerically")
    tr.add_argument("--from", dest="source", required=True, metavar="FRAMEWORK",
                    help="the framework the settings are written for: torch, keras, tf_keras, tf_keras_legacy, "
                         "tf1, tf_raw, optax, ... (rmsprop-harness explain lists them)")
    tr.add_argument("args", nargs="*", metavar="ARG=VALUE", help="its constructor arguments, e.g. lr=0.01 alpha=0.99")
    tr.add_argument("--to", action="append", required=True, metavar="FRAMEWORK",
                    help="target framework(s); repeat, separate with commas, or 'all'")
    tr.add_argument("--steps", type=int, default=None,
                    help="steps of the verification stream (default 200, or a recording's length)")
    tr.add_argument("--stream", default="gaussian", metavar="KIND[:OPT=V,...]|FILE.npz",
                    help="gradients for the verification: a kind with options (gaussian:scale=1e-4) or a recorded "
                         ".npz (default gaussian)")
    tr.add_argument("--scales", default=None, metavar="auto|none|S,S,...",
                    help="gradient scales to verify at (default auto: 1e-6 ... 1e2 unless the stream fixes its "
                         "scale); the verdict is the worst")
    tr.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    tr.add_argument("--format", choices=("text", "json"), default="text")

    pa = sub.add_parser("parity", help="the same settings through every framework's semantics: pairwise divergence "
                                       "and its attribution to knobs")
    pa.add_argument("settings", nargs="*", metavar="KNOB=VALUE",
                    help="framework-neutral settings: lr, decay, eps, momentum, centered, weight_decay "
                         "(unset: each framework's default; none: every framework's defaults)")
    pa.add_argument("--presets", action="append", metavar="FRAMEWORK",
                    help="which frameworks (default: torch, keras, keras_jax, keras_torch, tf_keras, "
                         "tf_keras_legacy, tf1, optax)")
    pa.add_argument("--steps", type=int, default=None, help="steps (default 200, or a recording's length)")
    pa.add_argument("--stream", default="gaussian", metavar="KIND[:OPT=V,...]|FILE.npz",
                    help="gradients: a kind with options (gaussian:scale=1e-4) or a recorded .npz (default gaussian)")
    pa.add_argument("--scales", default=None, metavar="auto|none|S,S,...",
                    help="gradient scales to compare at (default auto: 1e-6 ... 1e2 unless the stream fixes its "
                         "scale); each pair's verdict is its worst")
    pa.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    pa.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    return parser


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    print(explain(args.presets, only_differences=args.diff, fmt=args.format))
    return 0


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .runfolder import prepare_output
    from .runner import run_suite
    from .suite import load_suite

    devices = cli_args.devices(args.device)
    dtypes = cli_args.dtypes(args.dtype)
    cli_args.integer(args.jobs, "--jobs", 1, 256)
    adapters, cases = cli_args.split(args.adapter, "--adapter"), cli_args.split(args.case, "--case")
    prepare_output(args.out)  # a bad --out is refused before anything runs
    suite = load_suite(args.suite)
    if adapters:  # user adapters are described (a subprocess) before the progress bar starts
        from .adapters import resolve

        resolve(adapters)
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
                        disable=args.no_progress, transient=True)
    with progress:
        bar = progress.add_task(f"suite {suite.name}", total=None, last="starting workers")

        def update(done: int, total: int, row: dict) -> None:
            last = f"{row.get('case')} {row.get('adapter')} {row.get('dtype')}: {row.get('status')}" if row else ""
            progress.update(bar, completed=done, total=total, last=last)

        result = run_suite(suite, adapters=adapters, devices=devices, dtypes=dtypes, cases=cases, out=args.out,
                           jobs=args.jobs, progress=update)
    Console().print(summary_table(result.summary))
    for line in [*summary_notes(result.summary), *summary_warnings(result.summary)]:
        print(line)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    written = "divergence, summary, ulp_histogram" + (", parity, sweep, attribution, interactions"
                                                       if len(result.parity) else "")
    print(f"{suite.name}: {counts} in {result.env['wall_seconds']:.0f} s -> {args.out}/ ({written}.parquet, "
          "env.json)")
    code = result.exit_code
    if not args.no_report:
        from .report import write_report

        try:
            write_report(args.out)
            print(f"report: {args.out}/report.md, {args.out}/report.html (+ CSV exports)")
        except InputError as exc:  # the tables are on disk: a report failure must not hide the run's verdict
            print(f"{_PROG}: error: the report could not be written ({exc}); the tables are in {args.out}/",
                  file=sys.stderr)
            code = max(code, 2)
    for line in result.unavailable:
        print(f"{_PROG}: error: {line}", file=sys.stderr)
    return code


def _bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .bench import overhead_summary, run_bench, run_overhead

    cli_args.number(args.min_time, "--min-time", 0, 60, open_low=True)
    cli_args.integer(args.repeats, "--repeats", 3, 1000)
    cli_args.integer(args.threads, "--threads", 1, 1024)
    cli_args.integer(args.rounds, "--rounds", 1, 100)
    devices = cli_args.devices(args.device)
    dtypes = cli_args.dtypes(args.dtype)
    adapters = cli_args.split(args.adapter, "--adapter")
    if args.overhead:
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
    console = Console(stderr=True)

    def progress(row: dict) -> None:
        if not args.no_progress:
            what = f"{row.get('adapter')} {row.get('variant', '')} {row.get('device', '')} {row.get('n_params', '')}"
            rnd = f" (round {row['round'] + 1})" if row.get("round") else ""
            console.print(f"  {what}: {row.get('status')}{rnd}", highlight=False)

    result = run_bench(args.suite, adapters=adapters, devices=devices, dtypes=dtypes,
                       min_time=args.min_time, repeats=args.repeats, out=args.out, progress=progress,
                       rounds=args.rounds, threads=args.threads)
    Console(width=max(130, Console().width)).print(bench_table(result.throughput))
    tp = result.throughput
    for r in tp[tp["status"] != "ok"].drop_duplicates(["adapter", "status", "reason"]).itertuples():
        print(f"  {r.adapter} {'' if r.variant != r.variant else r.variant}: {r.status}: {r.reason}")
    counts = tp["status"].value_counts().to_dict()
    print(f"{result.env['suite']['name']}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f" in {result.env['wall_seconds']:.0f} s -> {args.out}/throughput.parquet")
    if not args.no_report:
        from .report import write_report

        write_report(args.out)
        print(f"report: {args.out}/report.md, {args.out}/report.html (+ throughput.csv)")
    for device in [d for d in devices or [] if d != "auto"]:
        measured = tp[(tp["device"] == device) & (tp["status"] != "skipped")] if "device" in tp else tp.iloc[:0]
        if measured.empty:  # a GPU benchmark job must not pass on a machine without a GPU
            print(f"{_PROG}: error: --device {device}: nothing was measured on it (no {device} visible; --device "
                  "auto measures where a device is visible)", file=sys.stderr)
            return 2
    return 1 if (tp["status"] == "error").any() else 0


def bench_table(tp):
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


def _baseline(args: argparse.Namespace) -> int:
    from .baseline import load_baseline, save_baseline

    path = save_baseline(args.run_dirs, args.to)
    saved = load_baseline(path)  # read back: what the gate will see
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    parts = [f"{len(saved.summary)} conformance rows"] if saved.conformance else []
    parts += [f"{len(saved.divergence)} divergence steps"] if len(saved.divergence) else []
    parts += [f"{len(saved.parity)} parity pairs"] if len(saved.parity) else []
    parts += [f"{len(saved.throughput)} bench points"] if saved.bench else []
    print(f"baseline saved to {path}/: {', '.join(parts)} ({size / 1e3:.0f} kB)")
    return 0


def _gate(args: argparse.Namespace) -> int:
    from .baseline import load_baseline, load_run_tables, write_baseline
    from .gate import Thresholds, gate, markdown, write

    cli_args.number(args.factor, "--factor", 1, 1e6, open_low=True)
    cli_args.number(args.min_effect, "--min-effect", 0, 10, open_low=True)
    cli_args.number(args.alpha, "--alpha", 0, 1, open_low=True)
    thresholds = Thresholds(args.factor, min_effect=args.min_effect, alpha=args.alpha)
    baseline = load_baseline(args.baseline)
    current = load_run_tables(args.current)
    result = gate(baseline, current, thresholds, args.throughput, subset=args.subset)
    if args.update_baseline:
        if not result.complete:
            raise cli_args.CliError(f"{', '.join(args.current)}: incomplete ({result.incomplete}); not saved as the "
                                    "baseline")
        write_baseline(current, args.baseline, list(args.current))
        result.updated = args.baseline
    md, js = write(result, args.out or args.current[0])
    print(markdown(result), end="")
    print(f"\n{md}, {js}")
    return result.exit_code


def _report(args: argparse.Namespace) -> int:
    from .report import load_run, write_report

    written = write_report(args.run_dir)
    print(", ".join(str(p) for p in written.values()))
    run = load_run(args.run_dir)
    if not run.complete:
        print(f"INCOMPLETE: {run.progress()} (the run was interrupted); the report shows what finished")
        return 1
    return 0


def _scenario(name: str, args: argparse.Namespace, presets: tuple[str, ...], settings: dict | None = None):
    from .parity import Scenario

    cli_args.integer(args.steps, "--steps", 1, 10**9)
    cli_args.integer(args.seed, "--seed", 0, 2**63 - 1)
    stream = cli_args.stream(args.stream, args.seed)
    shapes, steps = cli_args.scenario_stream(stream, args.steps)
    extra = {} if shapes is None else {"shapes": shapes}
    return Scenario(name, settings or {}, presets, stream, steps=steps, seed=args.seed,
                    scales=cli_args.scales(args.scales), **extra)


def _translate(args: argparse.Namespace) -> int:
    import json

    from reference import presets

    from .explain import parse_args
    from .translate import render, translate

    targets = cli_args.split(args.to, "--to") or []
    if targets == ["all"]:
        targets = [p for p in presets.PRESETS if p not in (args.source, "spec")]
    bad = [t for t in targets if t not in presets.PRESETS]
    if bad:
        raise cli_args.CliError(f"--to {bad[0]!r} is not a framework (choose from {', '.join(presets.PRESETS)} or all)")
    source_args = parse_args(args.source, args.args)
    results = []
    for target in targets:
        scenario = _scenario("translate", args, (args.source, target))
        results.append((translate(args.source, source_args, target, scenario), scenario))
    if args.format == "json":
        print(json.dumps([t.as_dict() for t, _ in results], indent=2, default=str))
    else:
        print("\n\n".join(render(t, scenario) for t, scenario in results))
    return 0 if all(t.ok for t, _ in results) else 1


def _parity(args: argparse.Namespace) -> int:
    import ast
    import json

    from .explain import _split_args
    from .parity import PARITY_PRESETS, parity

    settings = {}
    for item in (a for s in args.settings for a in _split_args(s) if a.strip()):
        key, eq, raw = item.partition("=")
        if not eq:
            raise cli_args.CliError(f"expected knob=value, got {item!r}")
        try:
            settings[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise cli_args.CliError(f"{key.strip()}={raw.strip()} is not a Python literal") from None
    chosen = tuple(cli_args.split(args.presets, "--presets") or PARITY_PRESETS)
    scenario = _scenario("settings" if settings else "defaults", args, chosen, settings)
    result = parity(scenario)
    if args.format == "json":
        print(json.dumps({"pairs": result.pairs.to_dict(orient="records"),
                          "sweep": result.sweep.to_dict(orient="records"),
                          "attribution": result.attribution.to_dict(orient="records"),
                          "interactions": result.interactions.to_dict(orient="records"),
                          "skipped": result.skipped[scenario.name]}, indent=2, default=str))
        return 0
    import pandas as pd

    from .report import md_table

    pairs = result.pairs[["a", "b", "scale", "divergence", "max_abs_diff", "verdict", "differing"]]
    attr = result.attribution
    attribution = pd.DataFrame({
        "pair": attr["a"] + " vs " + attr["b"], "knob": attr["label"],
        "values": [f"{a} -> {b}" if a or b else "" for a, b in zip(attr["value_a"], attr["value_b"], strict=True)],
        "alone": attr["alone"], "share": [_pct(s) for s in attr["share"]],
        "interaction": [_pct(i / w) if w else "" for i, w in zip(attr["interaction"], attr["with"], strict=True)]})
    scales = scenario.scale_list()
    where = (f"at its worst of {len(scales)} gradient scales ({scales[0]:g} ... {scales[-1]:g})" if len(scales) > 1
             else f"on {scenario.stream.label()} gradients")
    if args.format == "markdown":
        print(md_table(pairs) + "\n\n" + md_table(attribution))
    else:
        from rich.console import Console

        console = Console(width=max(120, Console().width))
        console.print(_rich(pairs, f"pairwise divergence (||p_a - p_b|| / distance moved), each pair {where}"))
        console.print(_rich(attribution, "attribution: Shapley shares of each pair's divergence (they add up to "
                                         "100% with the last row, what is left when every knob matches)"))
    for preset, why in result.skipped[scenario.name].items():
        print(f"  {preset} not compared: {why}")
    degenerate = result.pairs[result.pairs["verdict"] == "degenerate"]
    if len(degenerate):
        print(f"  degenerate: {len(degenerate)} pairs never move on this stream; nothing was compared")
    return 0


def _pct(x: float) -> str:
    return "" if x != x else f"{x:.1%}"


def _rich(frame, title: str):
    from rich.table import Table

    table = Table(title=title, box=None, pad_edge=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    return table


def summary_table(summary):
    """A compact table: one row per case and adapter, one column per dtype@device."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    columns = list(dict.fromkeys(f"{r.dtype}@{r.device}" for r in summary.itertuples()))
    for name in ("case", "adapter", *columns):
        table.add_column(name)
    style = {"ok": "green", "fail": "bold red", "error": "bold red", "degenerate": "bold magenta", "skipped": "yellow",
             "unsupported": "dim"}
    cells: dict[tuple, dict[str, str]] = {}
    for r in summary.itertuples():
        text = r.status
        if r.status in ("ok", "fail"):
            text += f" {r.tolerance_used:.0%}" if r.tolerance_used < 10 else f" {r.tolerance_used:.3g}x"
        cells.setdefault((r.case, r.adapter), {})[f"{r.dtype}@{r.device}"] = \
            f"[{style.get(r.status, 'bold red')}]{escape(text)}[/]"
    for (case, adapter), row in cells.items():
        table.add_row(case, adapter, *(row.get(c, "") for c in columns))
    return table


def _cases(cases: list[str]) -> str:
    shown = 2 if all(len(c) <= 40 for c in cases[:2]) else 1  # matrix case names are long
    more = f" and {len(cases) - shown} more" if len(cases) > shown else ""
    return ", ".join(cases[:shown]) + more


def summary_notes(summary, limit: int = 20) -> list[str]:
    """One line per failing or erroring case and adapter; one line per distinct unsupported or
    skipped reason and adapter (a matrix suite repeats those over many cases)."""
    lines = []
    bad = summary[~summary["status"].isin(["ok", "unsupported", "skipped"])]
    for (case, adapter, status, reason), rows in bad.groupby(["case", "adapter", "status", "reason"], sort=False):
        where = ",".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in rows.itertuples()))
        lines.append(f"  {case} / {adapter} [{where}]: {status}: {reason}")
    quiet = summary[summary["status"].isin(["unsupported", "skipped"])]
    for (adapter, status, reason), rows in quiet.groupby(["adapter", "status", "reason"], sort=False):
        cases = list(dict.fromkeys(rows["case"]))
        where = ",".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in rows.itertuples()))
        text = reason if reason.startswith(status) else f"{status}: {reason}"
        lines.append(f"  {adapter} [{where}] in {_cases(cases)}: {text}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more (see summary.parquet)"]
    return lines


def summary_warnings(summary, limit: int = 10) -> list[str]:
    """One line per distinct silent rewrite (the ``warnings`` column), naming the adapters and cases."""
    from .runner import WARNING_SEPARATOR

    seen: dict[str, dict[str, list[str]]] = {}
    for r in summary.itertuples():
        for text in filter(None, str(r.warnings).split(WARNING_SEPARATOR)):
            cases = seen.setdefault(text, {}).setdefault(r.adapter, [])
            if r.case not in cases:
                cases.append(r.case)
    lines = [f"  warning: {text} [{'; '.join(f'{a}: {_cases(c)}' for a, c in where.items())}]"
             for text, where in seen.items()]
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more warnings (see summary.parquet)"]
    return lines


class Terminated(BaseException):
    """SIGTERM: unwind like Ctrl-C (the run folder says incomplete; workers are killed)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"explain": _explain, "run": _run, "report": _report, "translate": _translate, "parity": _parity,
                "bench": _bench, "baseline": _baseline, "gate": _gate}
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; the finished rows are in the run folder (marked incomplete)",
              file=sys.stderr)
        return 130
    except Terminated:
        print(f"{parser.prog}: terminated; the finished rows are in the run folder (marked incomplete)",
              file=sys.stderr)
        return 143
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        from . import spawn

        spawn.kill_all()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
