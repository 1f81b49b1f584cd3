"""``rmsprop-harness train``: closed-loop training of real models in every framework, and why they part.

Example::

    rmsprop-harness train --workload seed,mlp --frameworks torch,keras.jax,optax --settings same,translated
"""

from __future__ import annotations

import argparse

from harness.cli.args import CliError, split


def add(sub) -> argparse.ArgumentParser:
    from harness.training import plan, trainers, workloads

    p = sub.add_parser(
        "train", help="train real models natively in every framework (closed loop): loss curves, divergence, "
                      "its growth and its split into optimizer semantics, numerics and dynamics",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", action="append", metavar="NAME",
                   help=f"which workloads (default: seed; known: {', '.join(workloads.WORKLOADS)})")
    p.add_argument("--frameworks", action="append", metavar="NAME",
                   help=f"which frameworks (default: {', '.join(trainers.defaults())}; also: "
                        f"{', '.join(t for t in trainers.TRAINERS if t not in trainers.defaults())})")
    p.add_argument("--settings", action="append", metavar="KIND",
                   help=f"{', '.join(plan.SETTINGS)} (default: all three)")
    p.add_argument("--base", default="torch", help="the framework every other is attributed against (default torch)")
    p.add_argument("--dtype", action="append", metavar="DTYPE", help="float32 (default) and/or float64")
    p.add_argument("--steps", type=int, help="training steps (default: each workload's own)")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="a neutral knob of the 'same' settings (lr, decay, eps, momentum, centered, weight_decay)")
    p.add_argument("--jobs", type=int, help="frameworks trained at once (default 2)")
    p.add_argument("--out", default="reports/train", help="run folder (default reports/train)")
    p.add_argument("--no-report", action="store_true", help="write the tables only, no report.md/report.html")
    p.add_argument("--dry-run", action="store_true", help="print each framework's arguments and the runs; run nothing")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.base.runfolder import prepare_output
    from harness.cli.parity import _settings
    from harness.report import write_report
    from harness.training.runner import TrainSpec, plan_lines, train_to_folder

    spec = TrainSpec(workloads=tuple(split(args.workload, "--workload") or ("seed",)),
                     frameworks=tuple(split(args.frameworks, "--frameworks") or ()),
                     settings=tuple(split(args.settings, "--settings") or ("defaults", "same", "translated")),
                     dtypes=tuple(split(args.dtype, "--dtype") or ("float32",)), steps=args.steps, base=args.base,
                     values=_settings(args.set))
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise CliError("--jobs must be between 1 and 64")
    if args.dry_run:
        print("\n".join(plan_lines([spec])))
        print(f"would write to {args.out}/ (dry run: nothing ran, nothing was written)")
        return 0
    spec.check()  # bad input is refused before the output folder is touched
    prepare_output(args.out, create=False)
    result, out = train_to_folder([spec], args.out, args.jobs,
                                  lambda trainer, s: print(f"  {trainer}: {s:.1f} s", flush=True))
    print(summary(result.tables, spec.base))
    if not args.no_report:
        write_report(out)
    print(f"-> {out}/ (training_runs, training, training_pairs, training_divergence, training_attribution, "
          "training_knobs)")
    for line in result.failed:
        print(f"  FAILED {line}")
    return 1 if result.failed else 0


def summary(tables: dict, base: str) -> str:
    """Per workload and settings: each framework's final loss, then the base's gap to each other framework."""
    from harness.report import md_table
    from harness.report.training import (
        attribution_table,
        groups,
        heading,
        headlines,
        knobs_table,
        pairs_table,
        runs_table,
    )

    out = []
    for key in groups(tables):
        out += [f"\n{heading(key)}", md_table(runs_table(tables, key).drop(columns=["args"]))]
        pairs = pairs_table(tables, key)
        pairs = pairs[pairs["a"] == base]
        if len(pairs):
            out.append(md_table(pairs))
        out += [f"- {line}" for line in headlines(tables, key)]
        attr = attribution_table(tables, key)
        if len(attr):
            out.append(md_table(attr))
        knobs = knobs_table(tables, key)
        if len(knobs):
            out.append(md_table(knobs))
    return "\n".join(out)
