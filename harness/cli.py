"""The ``rmsprop-harness`` command line.

Bad input prints one ``rmsprop-harness: error: ...`` line on stderr and exits 2;
no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


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
                     help="run on these devices instead of the cases' own: cpu, gpu (cuda)")
    run.add_argument("--dtype", action="append", metavar="DTYPE",
                     help="run these dtypes instead of the cases' own: float16, bfloat16, float32, float64")
    run.add_argument("--case", action="append", metavar="PATTERN", help="only cases whose name matches")
    run.add_argument("--out", default="reports/latest", metavar="DIR",
                     help="run folder for divergence.parquet, summary.parquet, env.json (default: reports/latest)")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="worker processes at a time (default: the number of cores)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    print(explain(args.presets, only_differences=args.diff, fmt=args.format))
    return 0


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .runner import run_suite
    from .streams import DTYPES
    from .suite import load_suite

    devices = _split(args.device)
    if devices:
        devices = list(dict.fromkeys("gpu" if d == "cuda" else d for d in devices))
        bad = [d for d in devices if d not in ("cpu", "gpu")]
        if bad:
            raise ValueError(f"--device {bad[0]!r} is not a device (choose cpu or gpu)")
    dtypes = _split(args.dtype)
    if dtypes and any(d not in DTYPES for d in dtypes):
        bad = next(d for d in dtypes if d not in DTYPES)
        raise ValueError(f"--dtype {bad!r} is not a dtype (choose from {', '.join(DTYPES)})")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs} must be >= 1")
    suite = load_suite(args.suite)
    if args.adapter:  # user adapters are described (a subprocess) before the progress bar starts
        from .adapters import resolve

        resolve(_split(args.adapter))
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
                        disable=args.no_progress, transient=True)
    with progress:
        bar = progress.add_task(f"suite {suite.name}", total=None, last="starting workers")

        def update(done: int, total: int, row: dict) -> None:
            last = f"{row.get('case')} {row.get('adapter')} {row.get('dtype')}: {row.get('status')}" if row else ""
            progress.update(bar, completed=done, total=total, last=last)

        result = run_suite(suite, adapters=_split(args.adapter), devices=devices, dtypes=dtypes,
                           cases=_split(args.case), out=args.out, jobs=args.jobs, progress=update)
    Console().print(summary_table(result.summary))
    for line in [*summary_notes(result.summary), *summary_warnings(result.summary)]:
        print(line)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    print(f"{suite.name}: {counts} in {result.env['wall_seconds']:.0f} s -> {args.out}/ "
          "(divergence.parquet, summary.parquet, env.json)")
    return result.exit_code


def summary_table(summary):
    """A compact table: one row per case and adapter, one column per dtype@device."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    columns = list(dict.fromkeys(f"{r.dtype}@{r.device}" for r in summary.itertuples()))
    for name in ("case", "adapter", *columns):
        table.add_column(name)
    style = {"ok": "green", "fail": "bold red", "error": "bold red", "skipped": "yellow", "unsupported": "dim"}
    cells: dict[tuple, dict[str, str]] = {}
    for r in summary.itertuples():
        text = r.status
        if r.status in ("ok", "fail"):
            text += f" {r.tolerance_used:.0%}" if r.tolerance_used < 10 else f" {r.tolerance_used:.3g}x"
        cells.setdefault((r.case, r.adapter), {})[f"{r.dtype}@{r.device}"] = f"[{style[r.status]}]{text}[/]"
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
    bad = summary[summary["status"].isin(["fail", "error"])]
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"explain": _explain, "run": _run}[args.command](args)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; the finished rows are in the run folder", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
