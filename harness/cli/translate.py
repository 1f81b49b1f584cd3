"""``rmsprop-harness translate``: another framework's arguments for the same RMSprop, verified numerically."""

from __future__ import annotations

import argparse

from harness.cli._parser import frameworks
from harness.cli.args import CliError, scenario, split


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("translate", help="another framework's arguments for the same RMSprop, verified numerically")
    p.add_argument("--from", dest="source", required=True, metavar="FRAMEWORK",
                   help=f"the framework the settings are written for: {frameworks()} (explain lists them)")
    p.add_argument("args", nargs="*", metavar="ARG=VALUE", help="its constructor arguments, e.g. lr=0.01 alpha=0.99")
    p.add_argument("--to", action="append", required=True, metavar="FRAMEWORK",
                   help="target framework(s); repeat, separate with commas, or 'all'")
    add_stream_arguments(p, "the verification")
    p.add_argument("--format", choices=("text", "json"), default="text")
    return p


def add_stream_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """--steps, --stream, --scales and --seed: the gradients a comparison runs on (translate and parity)."""
    p.add_argument("--steps", type=int, default=None, help=f"steps of {what} (default 200, or a recording's length)")
    p.add_argument("--stream", default="gaussian", metavar="KIND[:OPT=V,...]|FILE.npz",
                   help="gradients: a kind with options (gaussian:scale=1e-4) or a recorded .npz (default gaussian)")
    p.add_argument("--scales", default=None, metavar="auto|none|S,S,...",
                   help="gradient scales to compare at (default auto: 1e-6 ... 1e2 unless the stream fixes its "
                        "scale); the verdict is the worst")
    p.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")


def main(args: argparse.Namespace) -> int:
    import json

    from harness.compare.explain import parse_args
    from harness.compare.translate import render, translate
    from reference import implementations

    targets = split(args.to, "--to") or []
    if targets == ["all"]:
        targets = [p for p in implementations.names() if p not in (args.source, "spec")]
    bad = [t for t in targets if t not in implementations.names()]
    if bad:
        raise CliError(f"--to {bad[0]!r} is not a framework (choose from {frameworks()} or all)")
    source_args = parse_args(args.source, args.args)
    results = []
    for target in targets:
        chosen = scenario("translate", args, (args.source, target))
        results.append((translate(args.source, source_args, target, chosen), chosen))
    if args.format == "json":
        print(json.dumps([t.as_dict() for t, _ in results], indent=2, default=str))
    else:
        print("\n\n".join(render(t, chosen) for t, chosen in results))
    return 0 if all(t.ok for t, _ in results) else 1
