"""The ``rmsprop-harness`` command line: one module per command, each with its own arguments.

Bad input (`reference.errors.InputError`) prints one ``rmsprop-harness: error: ...`` line on
stderr and exits 2, with nothing lost; anything else is a bug and keeps its traceback. Exit
codes: 0 pass, 1 a failing, erroring, degenerate or incomplete result, 2 bad input, 130 Ctrl-C,
143 SIGTERM (the run folder then says it is incomplete, and no worker outlives the driver).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from harness import __version__
from harness.cli import (
    baseline,
    bench,
    explain,
    gate,
    history,
    identify,
    merge,
    parity,
    report,
    run,
    timeline,
    train,
    translate,
    vectors,
)
from harness.cli._parser import PROG, Parser
from reference.errors import InputError

#: Each command module: ``add(subparsers)`` declares its arguments, ``main(args) -> exit code`` runs it.
COMMANDS = (explain, run, bench, report, translate, parity, identify, timeline, train, merge, baseline, gate, vectors,
            history)


#: One or two command lines per command, shown at the end of its --help (tests/test_front_door.py parses each).
EXAMPLES = {
    "explain": ["rmsprop-harness explain torch keras --diff",
                "rmsprop-harness explain 'keras(rho=0.95)' --format json"],
    "run": ["rmsprop-harness run", "rmsprop-harness run --adapter torch,optax --case own-defaults --dtype float32",
            "rmsprop-harness run --adapter mypackage.kernels:make_adapter --suite edge"],
    "bench": ["rmsprop-harness bench --suite perf-gate --dry-run", "rmsprop-harness bench --adapter torch,optax",
              "rmsprop-harness bench --ab main"],
    "report": ["rmsprop-harness report reports/latest"],
    "translate": ["rmsprop-harness translate --from torch lr=0.01 alpha=0.99 eps=1e-8 --to optax"],
    "parity": ["rmsprop-harness parity --presets torch,keras"],
    "identify": ["rmsprop-harness identify --adapter optax", "rmsprop-harness identify --recording run.npz"],
    "timeline": ["rmsprop-harness timeline --implementation optax --versions 0.1.7,0.2.8"],
    "train": ["rmsprop-harness train --workload mlp --frameworks torch,optax --settings defaults,translated"],
    "merge": ["rmsprop-harness merge part-1 part-2 part-3 --out reports/latest"],
    "baseline": ["rmsprop-harness baseline save reports/latest --to reports/baseline"],
    "gate": ["rmsprop-harness gate --baseline reports/baseline --current reports/latest"],
    "history": ["rmsprop-harness history append reports/latest", "rmsprop-harness history show --out reports/history",
                "rmsprop-harness history gate reports/bench --last 10"],
    "vectors": ["rmsprop-harness vectors export --preset torch --out vectors/",
                "rmsprop-harness vectors check vectors/ --results results.json"],
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0],
                    epilog="examples:\n" + "\n".join(f"  {EXAMPLES[c][0]}" for c in ("run", "explain", "vectors")),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        p = command.add(sub)
        p.set_defaults(handler=command.main)
        if not p.epilog:
            p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[p.prog.split()[-1]])
            p.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


class Terminated(BaseException):
    """SIGTERM: unwind like Ctrl-C (the run folder says incomplete; workers are killed)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the finished rows are in the run folder (marked incomplete)", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{PROG}: terminated; the finished rows are in the run folder (marked incomplete)", file=sys.stderr)
        return 143
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        from harness.process import spawn

        spawn.kill_all()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """The console script (and ``python -m harness.cli``): `main`, then an exit that skips the native libraries'
    teardown. Arrow's thread pools can abort a finished process at interpreter exit (SIGABRT, "terminate called
    without an active exception", apache/arrow#34314: seen here once in a few hundred commands, after every file
    was written); by then `main` has closed its files, killed its workers and shut Ray down."""
    import os

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["COMMANDS", "EXAMPLES", "build_parser", "entry", "main"]
