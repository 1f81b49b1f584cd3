"""``rmsprop-harness explain``: the resolved semantics of presets side by side."""

from __future__ import annotations

import argparse

from harness.cli._parser import frameworks


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help="show the resolved semantics of presets side by side")
    p.add_argument("presets", nargs="*", metavar="PRESET",
                   help=f"a preset ({frameworks()}), optionally with arguments: torch:lr=0.01,momentum=0.9 "
                        "(default: every preset with its framework defaults)")
    p.add_argument("--diff", action="store_true", help="show only the knobs that differ")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.compare.explain import explain

    print(explain(args.presets, only_differences=args.diff, fmt=args.format))
    return 0
