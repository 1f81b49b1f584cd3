"""``rmsprop-harness vectors``: portable golden vectors for implementations outside Python (docs/vectors.md)."""

from __future__ import annotations

import argparse
import textwrap

from harness.cli._parser import frameworks
from harness.cli.args import split

EXAMPLES = """examples:
  rmsprop-harness vectors export --preset torch --out vectors/
  rmsprop-harness vectors export --preset torch,keras --case own-defaults --dtype float32 --out vectors/
  rmsprop-harness vectors check vectors/ --results my_kernel.json"""


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("vectors", help="export golden vectors (exact inputs, expected outputs, per-value tolerances) "
                                       "and check another implementation's outputs against them",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    e = what.add_parser("export", help="write vectors: JSON (hex floats), .npz and a token stream for C",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--preset", action="append", required=True, metavar="NAME",
                   help=f"whose semantics: {frameworks()}, or all; repeat or separate with commas")
    e.add_argument("--suite", default="default", metavar="NAME|PATH", help="the cases' suite (default: default)")
    e.add_argument("--case", action="append", metavar="PATTERN", help="only cases whose name matches")
    e.add_argument("--dtype", action="append", metavar="DTYPE", help="float32, float64 (default: both)")
    e.add_argument("--warmup", type=int, default=8, help="reference steps before the vector starts, so the state is "
                                                         "not the initial one (default 8)")
    e.add_argument("--steps", type=int, default=16, help="steps in each vector (default 16)")
    e.add_argument("--elements", type=int, default=64, help="at most this many values of each tensor (default 64)")
    e.add_argument("--out", required=True, metavar="DIR", help="the folder to write (index.json, <preset>/...)")
    c = what.add_parser("check", help="judge another implementation's outputs: the verdicts and diagnosis of run",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("folder", metavar="DIR", help="a folder written by vectors export")
    c.add_argument("--results", required=True, metavar="FILE",
                   help="the implementation's outputs: .json or .npz in the layout of docs/vectors.md")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.base import options

    if args.action == "export":
        from harness.conformance.vectors import DTYPES, export
        from reference import implementations

        chosen = split(args.preset, "--preset")
        chosen = list(implementations.names()) if chosen == ["all"] else chosen
        for value, name, low in ((args.warmup, "--warmup", 0), (args.steps, "--steps", 1),
                                 (args.elements, "--elements", 1)):
            options.integer(value, name, low, 100_000)
        files, skipped = export(args.out, presets_=chosen, suite=args.suite, cases=split(args.case, "--case"),
                                dtypes=tuple(split(args.dtype, "--dtype") or DTYPES), warmup=args.warmup,
                                steps=args.steps, elements=args.elements)
        vectors = [f for f in files if f.name.endswith(".json")]
        print(f"{len(vectors)} vectors ({', '.join(chosen)}) -> {args.out}/ (index.json; per vector .json, .npz, .txt)")
        for line in skipped:
            print(f"  no vector: {line}")
        return 0
    from rich.console import Console

    from harness.cli import console
    from harness.conformance.vectors_check import check

    table = check(args.folder, args.results)
    Console(width=140).print(console.status_table(table.assign(case=table["preset"] + "/" + table["case"])))
    for _, row in table[table["status"] != "ok"].iterrows():
        print(textwrap.shorten(f"  {row['case']} / {row['adapter']} [{row['dtype']}, {row['preset']}]: "
                               f"{row['status']}: {row['reason']}", 400))
    counts = table["status"].value_counts()
    print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(table)} vectors")
    return 0 if (table["status"] == "ok").all() else 1
