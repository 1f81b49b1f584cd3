"""Power and false-alarm rate of the paired A/B gate (`rmsprop-harness bench --ab`), measured here.

    .venv/bin/python examples/ab_power.py [--rounds 18] [--out reports/ab-power]

Copies this checkout's ``harness/`` and ``reference/`` into source trees: one unchanged, and one per
planted slowdown, where the torch and optax adapters' bench step runs the whole optimizer step
twice every k-th call (``_planted`` below: +1/k of the step's work, an extra pass over every
parameter and state, inside the adapter, no sleep). Each round measures every condition
(unchanged = the false-alarm row) in 2 blocks of the ``ab`` suite (fresh workers per block,
`harness.bench.ab.run_ab`), rounds interleaved in time. A gate of B blocks is then every
condition's verdict (`harness.bench.paired.paired_verdict`, alpha 0.01 over the suite's points)
on 2000 random B-subsets of that condition's measured blocks: the rate at which any point is
flagged is the power (the false-alarm rate for the unchanged build), each point's own rate the
power for a regression confined to it; B x the mean block time is the gate's bench time.
``--samples reports/ab-power/samples.csv`` recomputes the tables without measuring.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench.ab import Side, points, run_ab
from harness.bench.paired import paired_verdict
from harness.process.spawn import ROOT

PLANTS = {
    "harness/adapters/torch_adapter.py": ('        return Stepper(opt.step, sync, peak, device_time='
                                          'cuda_events(opt.step) if point.device == "gpu" else None)\n'),
    "harness/adapters/optax_adapter.py": "        return Stepper(one, lambda: jax.block_until_ready(holder), peak)\n",
}
HELPER = '''

def _planted(step, every={every}):
    """A planted regression: every {every}th call runs the whole step twice."""
    calls = [0]

    def planted():
        step()
        calls[0] += 1
        if calls[0] % every == 0:
            step()

    return planted
'''
SLOWDOWNS = {0.0: 0, 0.02: 50, 0.03: 33, 0.05: 20, 0.10: 10}  # slowdown -> every k-th call doubled


def tree(dst: Path, every: int) -> Path:
    """This checkout's sources in ``dst``, with the planted slowdown when ``every`` > 0."""
    shutil.rmtree(dst, ignore_errors=True)
    for package in ("harness", "reference"):
        shutil.copytree(ROOT / package, dst / package, ignore=shutil.ignore_patterns("__pycache__"))
    for path, line in PLANTS.items() if every else ():
        text = (dst / path).read_text()
        assert line in text, f"{path}: the bench step to plant in has moved"
        (dst / path).write_text(text.replace(line, line.replace("Stepper(opt.step", "Stepper(_planted(opt.step)")
                                             .replace("Stepper(one,", "Stepper(_planted(one),"))
                                + HELPER.format(every=every))
    return dst


def gates(samples: pd.DataFrame, blocks: int, n_points: int, draws: int = 2000, seed: int = 0,
          alpha: float = 0.01) -> list[float]:
    """Over ``draws`` gates of ``blocks`` random measured blocks: the fraction that flag any point as slower,
    then each point's own fraction (a regression confined to that point)."""
    logs = {key: np.log(g["current_s"].to_numpy() / g["base_s"].to_numpy())
            for key, g in samples.groupby(["point", "block"])}
    ids = sorted({b for _, b in logs})
    rng = random.Random(seed)
    hits = np.zeros(n_points + 1)
    for _ in range(draws):
        chosen = rng.sample(ids, blocks)
        slower = [paired_verdict([logs[(p, b)] for b in chosen], points=n_points, alpha=alpha).verdict == "slower"
                  for p in range(n_points)]
        hits += [any(slower), *slower]
    return list(hits / draws)


def tables(samples: pd.DataFrame, block_s: float, names: list[str], alpha: float = 0.01) -> pd.DataFrame:
    """Per gate size (blocks) and planted slowdown: bench seconds, the rate any point is flagged, each point's."""
    rows = []
    n_blocks = samples.groupby("slowdown")["block"].nunique().min()
    for blocks in [b for b in (4, 6, 8, 12) if b <= n_blocks]:
        for slowdown in SLOWDOWNS:
            rates = gates(samples[samples["slowdown"] == slowdown], blocks, len(names), alpha=alpha)
            rows.append({"blocks": blocks, "bench_s": round(blocks * block_s), "slowdown": f"+{slowdown:.0%}",
                         "any point": rates[0], **dict(zip(names, rates[1:], strict=True))})
    return pd.DataFrame(rows)


def measure(args: argparse.Namespace) -> tuple[pd.DataFrame, float]:
    """Every condition in 2 blocks per round, rounds interleaved in time; the samples and the mean block time."""
    trees = {s: tree(args.out / "src" / f"every{k}", k) for s, k in SLOWDOWNS.items()}
    base = Side("base", tree(args.out / "src" / "base", 0))
    pts = points(args.suite)
    frames, seconds = [], []
    for rnd in range(args.rounds):
        for slowdown, root in trees.items():
            started = time.perf_counter()
            result = run_ab(base, Side("current", root), pts, blocks=2, count=0)
            seconds.append((time.perf_counter() - started) / 2)
            if (result.points["verdict"] == "error").any():
                raise SystemExit(f"a side failed: {result.points['reason'].tolist()}")
            frames.append(result.samples.assign(slowdown=slowdown, block=result.samples["block"] + 2 * rnd,
                                                block_s=seconds[-1]))
        print(f"round {rnd + 1}/{args.rounds} done", flush=True)
    samples = pd.concat(frames, ignore_index=True)
    samples.to_csv(args.out / "samples.csv", index=False)
    return samples, float(np.mean(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=18)
    parser.add_argument("--out", type=Path, default=Path("reports/ab-power"))
    parser.add_argument("--suite", default="ab")
    parser.add_argument("--samples", type=Path, help="recompute the tables from a samples.csv this script wrote "
                                                      "(nothing measured)")
    parser.add_argument("--block-s", type=float, help="with --samples from an older run: its seconds per block")
    parser.add_argument("--alpha", type=float, default=0.01, help="the gate's --ab-alpha (default 0.01)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.samples:
        samples = pd.read_csv(args.samples)
        block_s = args.block_s or float(samples["block_s"].mean())
    else:
        samples, block_s = measure(args)
    names = [f"{p.adapter} {p.n_params:.0e}" for p in points(args.suite)]
    table = tables(samples, block_s, names, args.alpha)
    table.to_csv(args.out / "power.csv", index=False)
    estimates = samples.assign(d=np.log(samples["current_s"] / samples["base_s"])).groupby(
        ["slowdown", "point", "block"])["d"].median().groupby(["slowdown", "point"]).agg(["mean", "std"])
    estimates["ratio"] = np.exp(estimates["mean"])
    print(f"{len(names)} points ({', '.join(names)}), {samples.groupby('slowdown')['block'].nunique().min()} blocks "
          f"per condition, {block_s:.1f} s per block")
    print(estimates[["ratio", "std"]].round(4).to_string())
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
