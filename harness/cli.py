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
    return parser


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    print(explain(args.presets, only_differences=args.diff, fmt=args.format))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"explain": _explain}[args.command](args)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
