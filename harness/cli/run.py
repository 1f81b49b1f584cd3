"""``rmsprop-harness run``: a conformance suite, every framework against the float64 reference."""

from __future__ import annotations

import argparse
import sys
import time

from harness.cli._parser import PROG
from harness.cli.args import split
from reference.errors import InputError


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run a conformance suite: every framework against the float64 reference")
    p.add_argument("--suite", default="default", metavar="NAME|PATH",
                   help="a built-in suite (default, full, seed, edge) or a suite TOML file (default: default)")
    p.add_argument("--adapter", action="append", metavar="NAME",
                   help="only these adapters: names or families (torch = torch.single, torch.foreach, ...); a user "
                        "adapter by entry-point name or as package.module:factory joins every case it fits; repeat "
                        "or separate with commas")
    p.add_argument("--device", action="append", metavar="DEVICE",
                   help="run on these devices instead of the cases' own: cpu, gpu (cuda), or auto (cpu, plus a gpu "
                        "when one is visible); an explicit device nothing could run on is an error (exit 2)")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help="run these dtypes instead of the cases' own: float16, bfloat16, float32, float64")
    p.add_argument("--case", action="append", metavar="PATTERN", help="only cases whose name matches")
    p.add_argument("--out", default="reports/latest", metavar="DIR",
                   help="run folder for the tables, env.json and run.json (default: reports/latest)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes at a time (default: the number of cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--no-report", action="store_true", help="do not write report.md, report.html and the CSVs")
    p.add_argument("--history", nargs="?", const="", metavar="STORE",
                   help="append the finished run to the results store (rmsprop-harness history; default store "
                        "$RMSPROP_HARNESS_HISTORY or reports/history.duckdb)")
    p.add_argument("--no-train", action="store_true", help="skip the suite's [[train]] tables (closed-loop training, "
                                                           "docs/training.md)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only the k-th of n deterministic parts of the plan (a CI matrix: one machine per part; "
                        "rmsprop-harness merge joins the folders)")
    p.add_argument("--rerun", choices=("failed", "all"),
                   help="a run into a folder that holds shards of an earlier attempt reuses every valid one (same "
                        "task, environment and machine); failed reruns those that did not pass, all reruns "
                        "everything")
    p.add_argument("--env", action="append", metavar="PKG==VER[+PKG==VER]",
                   help="also run the adapters of these packages in a cached environment with them installed "
                        "(e.g. --env optax==0.1.7; join packages with +); versions stand side by side as "
                        "adapter@environment rows (docs/distributed.md)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: worker processes on this machine (default); ray: each worker group a Ray task, on "
                        "--ray-address or on a local Ray instance with --jobs worker processes")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="an existing Ray cluster (ray://host:10001 or auto); default: start a local instance")
    p.add_argument("--dry-run", action="store_true",
                   help="load and check everything (suite, adapters, options), print the plan: tasks per adapter, "
                        "the workers and the parity scenarios; run nothing, write nothing")
    return p


def _dry_run(suite, adapters, devices, dtypes, cases, jobs, out: str, no_train: bool = False,
             environments=None) -> int:
    """The plan of a run, without running it."""
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    from harness.adapters import ADAPTERS
    from harness.conformance.runner import prepare

    suite, tasks = prepare(suite, adapters=adapters, devices=devices, dtypes=dtypes, cases=cases, jobs=jobs,
                           environments=environments)
    table = Table("adapter", "worker", "tasks", "unsupported", "dtypes", "devices", title=f"suite {suite.name}: plan")
    by_adapter: dict[str, list] = {}
    for p in tasks:
        by_adapter.setdefault(p.label, []).append(p)
    workers = Counter((ADAPTERS[ps[0].adapter].worker_key, ps[0].environment) for ps in by_adapter.values())
    for adapter, planned in by_adapter.items():
        info = ADAPTERS[planned[0].adapter]
        table.add_row(adapter, info.module.rsplit(".", 1)[-1],
                      str(sum(p.task is not None for p in planned)), str(sum(p.task is None for p in planned)),
                      ",".join(sorted({p.dtype for p in planned})), ",".join(sorted({p.device for p in planned})))
    Console(width=120).print(table)
    runnable = sum(p.task is not None and not p.task.optional_device for p in tasks)
    optional = sum(p.task is not None and p.task.optional_device for p in tasks)
    unsupported = sum(p.task is None for p in tasks)
    gpu = f", {optional} more where a GPU is visible" if optional else ""
    print(f"{suite.name}: {runnable} tasks to run{gpu}, {unsupported} unsupported, in "
          f"{len({p.case.name for p in tasks})} cases, {len(workers)} worker processes; "
          f"{len(suite.parity) if cases is None else 0} parity scenarios; would write to {out}/ (dry run: "
          "nothing ran, nothing was written)")
    if suite.train and cases is None and adapters is None and not no_train:
        from harness.training.runner import plan_lines

        print("closed loop ([[train]], docs/training.md):")
        print("\n".join(f"  {line}" for line in plan_lines(list(suite.train))))
    return 0


class _Progress:
    """A progress bar on a terminal; elsewhere (a CI log) one line per finished worker group of adapters
    and at least every ~10 s, so a long run is never silent."""

    def __init__(self, title: str, enabled: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.enabled, self.title = enabled, title
        self.tty = self.console.is_terminal
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=self.console,
                            disable=not (enabled and self.tty), transient=True)
        self.task = self.bar.add_task(title, total=None, last="starting workers")
        self.started = self.last_line = time.monotonic()
        self.adapters: dict[str, int] = {}

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(self, done: int, total: int, row: dict) -> None:
        last = f"{row.get('case')} {row.get('adapter')} {row.get('dtype')}: {row.get('status')}" if row else ""
        self.bar.update(self.task, completed=done, total=total, last=last)
        if not self.enabled or self.tty:
            return
        now = time.monotonic()
        if now - self.last_line >= 10 or done == total:
            print(f"{self.title}: {done}/{total} tasks in {now - self.started:.0f} s (last: {last})",
                  file=sys.stderr, flush=True)
            self.last_line = now


def main(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    from harness import report
    from harness.adapters import resolve
    from harness.base.envs import Environment
    from harness.base.runfolder import prepare_output
    from harness.cli import console
    from harness.conformance.runner import run_suite
    from harness.conformance.suite import load_suite
    from harness.conformance.units import parse_shard

    adapters, cases = split(args.adapter, "--adapter"), split(args.case, "--case")
    environments = [Environment.from_spec(e) for e in split(args.env, "--env") or []]
    parse_shard(args.shard)
    devices, dtypes = split(args.device, "--device"), split(args.dtype, "--dtype")
    if not args.dry_run:
        prepare_output(args.out, create=False)  # a bad --out is refused before anything runs
    suite = load_suite(args.suite)
    if adapters:  # user adapters are described (a subprocess) before the progress bar starts
        resolve(adapters)
    if args.dry_run:
        return _dry_run(suite, adapters, devices, dtypes, cases, args.jobs, args.out, args.no_train, environments)
    with _Progress(f"suite {suite.name}", not args.no_progress) as progress:
        result = run_suite(suite, adapters=adapters, devices=devices, dtypes=dtypes, cases=cases, out=args.out,
                           jobs=args.jobs, progress=progress.update, training=not args.no_train,
                           environments=environments, shard=args.shard, rerun=args.rerun, executor=args.executor,
                           address=args.ray_address)
    run = report.Run(result.out, {**result.tables, "throughput": pd.DataFrame()}, result.env,
                     {"complete": True})
    Console().print(console.status_table(result.summary))
    ran = list(dict.fromkeys(result.summary["adapter"])) if len(result.summary) else []
    print(f"adapters ({len(ran)}): {', '.join(ran) or 'none'}" + ("" if adapters else
          " (the suite's own; a suite without `adapters` runs the default set: docs/suites.md)"))
    for line in [*console.notes(run), *console.warning_lines(run)]:
        print(line)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    written = ", ".join(name for name, frame in result.tables.items() if len(frame))
    plan = result.env.get("plan", {})
    resumed = f", {result.env['resumed']} of {plan.get('selected')} tasks reused from {args.out}/shards" \
        if result.env.get("resumed") else ""
    part = f" (part {plan['shard']} of the plan)" if plan.get("shard", "1/1") != "1/1" else ""
    print(f"{suite.name}: {counts} in {result.env['wall_seconds']:.0f} s{resumed}{part} -> {args.out}/ "
          f"({written}.parquet, env.json, run.json)")
    if result.training:
        pairs = result.training["training_pairs"]
        verdicts = ", ".join(f"{n} {v}" for v, n in pairs["verdict"].value_counts().items())
        runs = result.training["training_runs"]
        print(f"closed loop: {int((runs['status'] == 'done').sum())} training runs, {len(pairs)} pairs ({verdicts}); "
              "report.md has the loss, divergence and attribution tables")
        for line in result.training_failed:
            print(f"  FAILED training: {line}")
    code = result.exit_code
    if not args.no_report:
        try:
            report.write_report(args.out)
            print(f"report: {args.out}/report.md, {args.out}/report.html (+ CSV exports)")
        except InputError as exc:  # the tables are on disk: a report failure must not hide the run's verdict
            print(f"{PROG}: error: the report could not be written ({exc}); the tables are in {args.out}/",
                  file=sys.stderr)
            code = max(code, 2)
    if args.history is not None and result.env.get("complete"):
        from harness.history.store import Store, store_path

        store = Store(store_path(args.history or None))
        _, added = store.append(args.out)
        print(f"history: {added} points appended to {store.path}")
    for line in result.unavailable:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    return code
