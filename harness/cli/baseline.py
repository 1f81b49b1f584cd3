"""``rmsprop-harness baseline save RUN_DIR ...``: store a run as the baseline the gate compares against."""

from __future__ import annotations

import argparse

from harness.cli._parser import Parser


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("baseline", help="store a run as the baseline the gate compares against")
    commands = p.add_subparsers(dest="baseline_command", required=True, parser_class=Parser)
    save = commands.add_parser("save", help="store run folders' summary, divergence, parity and throughput tables "
                                            "and their env (small enough to commit)")
    save.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a conformance run folder and/or a bench folder")
    save.add_argument("--to", default="reports/baseline", metavar="DIR",
                      help="baseline folder, replaced as a whole (default: reports/baseline)")
    return p


def main(args: argparse.Namespace) -> int:
    from harness.gate.baseline import load_baseline, save_baseline

    path = save_baseline(args.run_dirs, args.to)
    saved = load_baseline(path)  # read back: what the gate will see
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    parts = [f"{len(saved.summary)} conformance rows"] if saved.conformance else []
    parts += [f"{len(saved.divergence)} divergence steps"] if len(saved.divergence) else []
    parts += [f"{len(saved.parity)} parity pairs"] if len(saved.parity) else []
    parts += [f"{len(saved.throughput)} bench points"] if saved.bench else []
    print(f"baseline saved to {path}/: {', '.join(parts)} ({size / 1e3:.0f} kB)")
    return 0
