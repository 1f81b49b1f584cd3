"""``rmsprop-harness timeline``: one implementation's cases across its versions; where its numerics changed."""

from __future__ import annotations

import argparse
import sys

from harness.cli._parser import PROG
from harness.cli.args import split
from reference.errors import InputError


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("timeline", help="run an implementation's cases across its versions (one cached environment "
                                        "each) and report at which version its numerics changed, and which knob",
                       epilog="example: rmsprop-harness timeline --implementation optax --versions "
                              "0.1.7,0.2.3,0.2.4,0.2.8")
    p.add_argument("--implementation", required=True, metavar="NAME",
                   help="a preset (optax, keras_jax, torch) or a package (keras: every backend)")
    p.add_argument("--versions", required=True, action="append", metavar="V1,V2,...",
                   help="versions of its package, oldest first")
    p.add_argument("--with", dest="extra", action="append", metavar="PKG==VER",
                   help="more packages pinned in every version's environment (e.g. --with jax==0.4.30)")
    p.add_argument("--suite", default="timeline", metavar="NAME|PATH", help="the cases (default: timeline)")
    p.add_argument("--dtype", action="append", metavar="DTYPE", help="only these dtypes")
    p.add_argument("--out", default="reports/timeline", metavar="DIR", help="run folder (default: reports/timeline)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes at a time")
    p.add_argument("--no-identify", action="store_true",
                   help="do not run identify on a numerics change (which knob changed)")
    p.add_argument("--no-report", action="store_true", help="do not write report.md and report.html")
    p.add_argument("--dry-run", action="store_true",
                   help="print the environments (and whether each is cached) and the plan; create and run nothing")
    return p


def _dry_run(args: argparse.Namespace) -> int:
    from harness.base import envs
    from harness.conformance.runner import prepare
    from harness.conformance.timeline import environments, subject

    sub = subject(args.implementation)
    named = environments(sub, split(args.versions, "--versions"), split(args.extra, "--with"))
    suite, tasks = prepare(args.suite, adapters=list(sub.adapters), devices=["cpu"],
                           dtypes=split(args.dtype, "--dtype"), environments=named, own_environment=False)
    for env in named:
        cached = "cached" if envs.installed(envs.location(env)) is not None else "to create"
        print(f"{env.name}: {' '.join(env.packages)} ({cached}: {envs.location(env)})")
    runnable = sum(p.task is not None for p in tasks)
    print(f"{args.implementation}: {len(named)} versions x {len({p.case.name for p in tasks})} cases of suite "
          f"{suite.name} on {', '.join(sub.adapters)}: {runnable} tasks, {len(tasks) - runnable} unsupported; would "
          f"write to {args.out}/ (dry run: nothing created, nothing ran)")
    return 0


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness import report
    from harness.base.runfolder import prepare_output
    from harness.conformance.timeline import run_timeline

    if args.dry_run:
        return _dry_run(args)
    prepare_output(args.out, create=False)
    result = run_timeline(args.implementation, split(args.versions, "--versions"), suite=args.suite,
                          extra=split(args.extra, "--with"), out=args.out, jobs=args.jobs,
                          dtypes=split(args.dtype, "--dtype"), identify=not args.no_identify)
    table = result.derived["timeline"]
    shown = Table("case", "adapter", "dtype", "from", "to", "change", "knob", "budget before -> after",
                  title=f"{args.implementation}: semantic timeline")
    for r in table.itertuples():
        if r.change != "none":
            shown.add_row(r.case, r.adapter, r.dtype, r.from_version, r.to_version, r.change, r.knob,
                          f"{r.budget_from:.3g} -> {r.budget_to:.3g}")
    Console(width=140).print(shown)
    counts = ", ".join(f"{n} {c}" for c, n in table["change"].value_counts().items())
    print(f"{args.implementation}: {len(table)} version steps compared ({counts}) -> {args.out}/timeline.parquet")
    code = 0 if result.env.get("complete") else 1
    if not args.no_report:
        try:
            report.write_report(args.out)
            print(f"report: {args.out}/report.md, {args.out}/report.html")
        except InputError as exc:
            print(f"{PROG}: error: the report could not be written ({exc})", file=sys.stderr)
            code = 2
    return code
