"""``rmsprop-harness parity``: the same settings through every framework's semantics, at every gradient scale."""

from __future__ import annotations

import argparse

from harness.cli._parser import frameworks
from harness.cli.args import CliError, scenario, split
from harness.cli.translate import add_stream_arguments


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("parity", help="the same settings through every framework's semantics: pairwise divergence "
                                      "and its attribution to knobs")
    p.add_argument("settings", nargs="*", metavar="KNOB=VALUE",
                   help="framework-neutral settings: lr, decay, eps, momentum, centered, weight_decay (unset: each "
                        "framework's default; none: every framework's defaults)")
    p.add_argument("--presets", action="append", metavar="FRAMEWORK",
                   help=f"which frameworks (default: {frameworks(parity_only=True)})")
    add_stream_arguments(p, "the comparison")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    return p


def _settings(items: list[str]) -> dict:
    import ast

    from harness.compare.explain import _split_args

    settings = {}
    for item in (a for s in items for a in _split_args(s) if a.strip()):
        key, eq, raw = item.partition("=")
        if not eq:
            raise CliError(f"expected knob=value, got {item!r}")
        try:
            settings[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise CliError(f"{key.strip()}={raw.strip()} is not a Python literal") from None
    return settings


def _pct(x: float) -> str:
    return "" if x != x else f"{x:.1%}"


def main(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from harness.cli.console import frame_table
    from harness.compare.parity import parity
    from harness.report import md_table
    from reference import implementations

    settings = _settings(args.settings)
    chosen = tuple(split(args.presets, "--presets") or implementations.parity_presets())
    sc = scenario("settings" if settings else "defaults", args, chosen, settings)
    result = parity(sc)
    if args.format == "json":
        print(json.dumps({"pairs": result.pairs.to_dict(orient="records"),
                          "sweep": result.sweep.to_dict(orient="records"),
                          "attribution": result.attribution.to_dict(orient="records"),
                          "interactions": result.interactions.to_dict(orient="records"),
                          "skipped": result.skipped[sc.name]}, indent=2, default=str))
        return 0
    pairs = result.pairs[["a", "b", "scale", "divergence", "max_abs_diff", "verdict", "differing"]]
    attr = result.attribution
    attribution = pd.DataFrame({
        "pair": attr["a"] + " vs " + attr["b"], "knob": attr["label"],
        "values": [f"{a} -> {b}" if a or b else "" for a, b in zip(attr["value_a"], attr["value_b"], strict=True)],
        "alone": attr["alone"], "share": [_pct(s) for s in attr["share"]],
        "interaction": [_pct(i / w) if w else "" for i, w in zip(attr["interaction"], attr["with"], strict=True)]})
    scales = sc.scale_list()
    where = (f"at its worst of {len(scales)} gradient scales ({scales[0]:g} ... {scales[-1]:g})" if len(scales) > 1
             else f"on {sc.stream.label()} gradients")
    if args.format == "markdown":
        print(md_table(pairs) + "\n\n" + md_table(attribution))
    else:
        from rich.console import Console

        console = Console(width=max(120, Console().width))
        console.print(frame_table(pairs, f"pairwise divergence (||p_a - p_b|| / distance moved), each pair {where}"))
        console.print(frame_table(attribution, "attribution: Shapley shares of each pair's divergence (they add up "
                                               "to 100% with the last row, what is left when every knob matches)"))
    for preset, why in result.skipped[sc.name].items():
        print(f"  {preset} not compared: {why}")
    degenerate = result.pairs[result.pairs["verdict"] == "degenerate"]
    if len(degenerate):
        print(f"  degenerate: {len(degenerate)} pairs never move on this stream; nothing was compared")
    return 0
