"""What the harness found: where each implementation departs from the semantics it claims or is assumed to have.

    .venv/bin/python examples/findings.py            # every finding, measured now (about a minute)
    .venv/bin/python examples/findings.py --only bnb  # the findings whose id starts with "bnb"

Each finding is measured, not asserted: on the float64 references of the presets (`harness.compare.parity`:
the same numbers `rmsprop-harness parity` prints) or on the real package driven through the harness' worker
(one process per framework, as a run does). A framework that is not installed gives "not measured" with the
reason. docs/findings.md quotes one run of this script; tests/test_findings.py checks the claims.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STEPS = 200
WARMUP_COSINE = tuple(1e-3 * min(1.0, (t + 1) / 20) * (0.5 + 0.5 * np.cos(np.pi * t / STEPS)) for t in range(STEPS))


@dataclass(frozen=True)
class Finding:
    id: str
    implementation: str
    assumed: str  # what users assume or the implementation claims
    found: str  # what it does
    command: str  # how to see it with the harness
    measure: Callable[[], str]  # the measured size, as text


# ------------------------------------------------------------------------------------ measuring
def pair(a: str, b: str, settings: dict, lrs: tuple | None = None, scales: str = "auto") -> dict:
    """The parity row of presets ``a`` and ``b`` (float64 references, worst gradient scale)."""
    from harness.compare.parity import parity
    from harness.compare.sweep import Scenario

    result = parity(Scenario("finding", settings, presets=(a, b), lrs=lrs, scales=scales))
    if result.pairs.empty:
        raise RuntimeError(f"{a} vs {b}: {result.skipped}")
    return result.pairs.iloc[0].to_dict()


def parity_text(row: dict) -> str:
    return (f"divergence {row['divergence']:.3g} (max |dp| {row['max_abs_diff']:.3g}, {row['budgets64']:.3g} float64 "
            f"budgets, tolerance {row['tolerance64']:.0f}); {row['verdict']}; knobs: {row['differing'] or 'none'}")


def run(adapter: str, kwargs: dict, *, dtype: str = "float32", steps: int = 50, shape: tuple = (64, 64),
        zero_start: bool = False, seed: int = 3) -> dict[str, np.ndarray]:
    """The real implementation's parameters after each step, ``(steps, *shape)``, through a harness worker."""
    from harness.adapters import ADAPTERS, Task
    from harness.base.streams import StreamSpec
    from harness.conformance.worker import run_worker

    rng = np.random.default_rng(seed)
    params0 = {"w": np.zeros(shape) if zero_start else rng.normal(size=shape)}
    task = Task(adapter=adapter, kwargs=kwargs, stream=StreamSpec("gaussian", seed=seed), shapes={"w": shape},
                params0=params0, steps=steps, dtype=dtype, record_steps=tuple(range(1, steps + 1)))
    out: dict[int, dict] = {}
    run_worker([ADAPTERS[adapter]], [task], out.__setitem__)
    payload = out[0]
    if payload["status"] != "done":
        raise RuntimeError(f"{adapter}: {payload['status']}: {payload.get('reason')}")
    return {"w": np.stack([s.params["w"] for s in payload["snapshots"]]), "p0": params0["w"]}


def reference(preset: str, kwargs: dict, dtype: str, steps: int = 50, shape: tuple = (64, 64), seed: int = 3,
              zero_start: bool = False, **changes) -> np.ndarray:
    """The float64 reference of ``preset(**kwargs)`` (with spec ``changes``) on the stream `run` uses."""
    from harness.base.streams import GradientStream, StreamSpec, cast
    from reference import presets, run_reference

    rng = np.random.default_rng(seed)
    p0 = {"w": cast(np.zeros(shape) if zero_start else rng.normal(size=shape), dtype)}
    grads = list(GradientStream(StreamSpec("gaussian", seed=seed), {"w": shape}).steps(steps, dtype))
    spec = presets.get(preset)(**kwargs)
    return run_reference(spec.replace(**changes) if changes else spec, p0, grads)["w"]


def rel(a: np.ndarray, b: np.ndarray, p0: np.ndarray) -> float:
    """max |a - b| over the distance the parameters moved (max |b - p0|)."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b - p0)), 1e-300))


# ------------------------------------------------------------------------------------ the findings
def _timm_tf1() -> str:
    return parity_text(pair("timm", "tf1", {"lr": 1e-3, "decay": 0.9, "eps": 1e-10, "momentum": 0.9}, scales="none"))


def _timm_schedule() -> str:
    on = pair("timm", "tf1", {"decay": 0.9, "eps": 1e-10, "momentum": 0.9}, lrs=WARMUP_COSINE, scales="none")
    return f"lr_in_momentum=True (its default) under a warm-up + cosine schedule: {parity_text(on)}"


def _sb3_tf1() -> str:
    settings = {"lr": 1e-3, "decay": 0.9, "eps": 1e-10, "momentum": 0.9}
    const = pair("sb3", "tf1", settings, scales="none")
    sched = pair("sb3", "tf1", {k: v for k, v in settings.items() if k != "lr"}, lrs=WARMUP_COSINE, scales="none")
    return (f"constant lr: divergence {const['divergence']:.3g} ({const['verdict']}); warm-up + cosine: "
            f"divergence {sched['divergence']:.3g} ({sched['verdict']}; knobs: {sched['differing']})")


def _pfrl_tf1() -> str:
    return parity_text(pair("pfrl", "tf1", {"lr": 2.5e-4, "decay": 0.95, "eps": 1e-2}, scales="none"))


def _bnb_momentum() -> str:
    with_m = run("bnb.32bit", {"lr": 1e-2, "momentum": 0.9})
    without = run("bnb.32bit", {"lr": 1e-2})
    torch_m = reference("torch", {"lr": 1e-2, "momentum": 0.9}, "float32")
    same = float(np.max(np.abs(with_m["w"] - without["w"])))
    return (f"momentum=0.9 vs momentum=0: max |dp| = {same:.3g} over 50 steps (identical); against torch's "
            f"momentum=0.9 (what the argument promises): {rel(with_m['w'], torch_m, with_m['p0']):.3g} of the "
            "distance moved")


def _bnb_float64() -> str:
    import subprocess

    code = ("import torch, bitsandbytes as b; p = torch.nn.Parameter(torch.full((8,), 1/3, dtype=torch.float64)); "
            "o = b.optim.RMSprop32bit([p], lr=1e-2); p.grad = torch.full((8,), 0.1, dtype=torch.float64); o.step(); "
            "x = p[0].item(); print(x, abs(x - float(torch.tensor(x).float())))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    x, off = proc.stdout.split()[-2:]
    return (f"a float64 parameter after one step holds {x}, {float(off):.3g} away from a float32 value "
            "(0: it is one): float32 arithmetic written into float64")


def _bnb_8bit() -> str:
    from reference import presets
    from reference.quantization import state_error_bounds

    rng = np.random.default_rng(0)
    p0 = {"w": rng.normal(size=(256, 128))}
    grads = [{"w": rng.normal(size=(256, 128))} for _ in range(STEPS)]
    spec = presets.get("bitsandbytes_8bit")()
    bounds = state_error_bounds(spec, grads, p0, (10, 50, 200))
    real = run("bnb.8bit", {}, steps=50, shape=(256, 128))
    real32 = run("bnb.32bit", {}, steps=50, shape=(256, 128))
    ref = reference("bitsandbytes_8bit", {}, "float32", steps=50, shape=(256, 128))
    moved = np.abs(ref[-1] - real["p0"])
    parts = [f"step {t}: allowance/moved median {float(np.median(bounds[t][0]['w'] / np.maximum(moved, 1e-30))):.2g}"
             for t in (10, 50)]
    return (f"real 8-bit vs float64 reference after 50 steps: {rel(real['w'], ref, real['p0']):.3g} of the distance "
            f"moved (32-bit: {rel(real32['w'], ref, real32['p0']):.3g}); derived allowance ({', '.join(parts)}); "
            "the early steps keep it tight enough to fail a 20% larger lr (tests/test_frameworks.py)")


def _mlx_bf16() -> str:
    bf16_lr = 0.00099945068359375  # bfloat16(1e-3), exactly
    runs = {(dtype, lr): run("mlx", {"learning_rate": lr}, dtype=dtype, steps=20)["w"]
            for dtype in ("bfloat16", "float32") for lr in (1e-3, bf16_lr)}
    same = float(np.max(np.abs(runs["bfloat16", 1e-3] - runs["bfloat16", bf16_lr])))
    apart = float(np.max(np.abs(runs["float32", 1e-3] - runs["float32", bf16_lr])))
    return (f"bfloat16, 20 steps: lr=1e-3 and lr=bfloat16(1e-3)={bf16_lr} give max |dp| = {same:.3g} (the same "
            f"bits: the lr IS rounded to bfloat16, -0.055%, every step alike); in float32 the two differ by "
            f"{apart:.3g}")


def _paddle_rounding() -> str:
    kwargs = {"learning_rate": 1e-2, "rho": 0.95, "epsilon": 1e-6, "momentum": 0.9}
    real = run("paddle", kwargs, dtype="float64")
    exact = reference("paddle", kwargs, "float64", hyperparam_rounding="exact")
    modelled = reference("paddle", kwargs, "float64")
    return (f"float64, 50 steps: against exact hyperparameters {rel(real['w'], exact, real['p0']):.3g} of the distance "
            f"moved; with rho, epsilon and momentum in float32 {rel(real['w'], modelled, real['p0']):.3g}")


def _paddle_l2() -> str:
    return parity_text(pair("paddle", "keras", {"lr": 1e-3, "decay": 0.9, "eps": 1e-7, "weight_decay": 1e-2},
                            scales="none"))


def _jax_example_optax() -> str:
    return parity_text(pair("jax_example", "optax", {"lr": 1e-3, "momentum": 0.9}))


def _keras2() -> str:
    return parity_text(pair("keras2", "keras", {}))


def _pfrl_maximize() -> str:
    real = run("pfrl", {"lr": 1e-2, "maximize": True})
    minimizing = reference("pfrl", {"lr": 1e-2}, "float32")
    maximizing = reference("pfrl", {"lr": 1e-2}, "float32", maximize=True)
    return (f"maximize=True, 50 steps: {rel(real['w'], minimizing, real['p0']):.3g} of the distance moved from the "
            f"minimizing reference (float32 rounding), {rel(real['w'], maximizing, real['p0']):.3g} from the "
            "maximizing one")


FINDINGS = [
    Finding("timm-tf1-float64", "timm RMSpropTF", "matches TF1 (its docstring: 'behave like Tensorflow')",
            "TF1's semantics with exact hyperparameters; TF1 rounds lr, decay, eps and momentum to float32",
            "rmsprop-harness parity --presets timm,tf1 --scales none lr=0.001 decay=0.9 eps=1e-10 momentum=0.9",
            _timm_tf1),
    Finding("timm-schedule", "timm RMSpropTF", "lr in the buffer like TF1 under any schedule",
            "yes with lr_in_momentum=True; False is torch's form", "examples/findings.py --only timm-schedule",
            _timm_schedule),
    Finding("sb3-tf1-schedule", "stable-baselines3 RMSpropTFLike", "TF-like (SB2/A2C parity)",
            "TF1's start and eps, torch's momentum form: equal to TF1 only at a constant lr",
            "examples/findings.py --only sb3", _sb3_tf1),
    Finding("pfrl-tf1", "pfrl RMSpropEpsInsideSqrt", "the TF/DQN RMSprop (eps inside)",
            "square average starts at 0 (TF1: 1); lr after the buffer",
            "rmsprop-harness parity --presets pfrl,tf1 --scales none lr=0.00025 decay=0.95 eps=0.01", _pfrl_tf1),
    Finding("pfrl-maximize", "pfrl RMSpropEpsInsideSqrt", "torch's constructor flags work (it subclasses torch's)",
            "maximize=True is accepted and ignored: it still minimizes", "examples/findings.py --only pfrl-maximize",
            _pfrl_maximize),
    Finding("bnb-momentum", "bitsandbytes RMSprop", "momentum=0.9 adds momentum (the argument exists)",
            "accepted, stored and ignored by every RMSprop kernel",
            "rmsprop-harness run --case as-configured --adapter bnb (the warnings column)", _bnb_momentum),
    Finding("bnb-float64", "bitsandbytes RMSprop", "a float64 model trains in float64",
            "computed in float32 and written back", "examples/findings.py --only bnb-float64", _bnb_float64),
    Finding("bnb-8bit", "bitsandbytes RMSprop8bit", "close to the 32-bit optimizer",
            "block-wise 8-bit state: bounded, element by element, by reference/quantization.py",
            "rmsprop-harness run --adapter bnb.8bit", _bnb_8bit),
    Finding("mlx-bf16-lr", "MLX RMSprop", "lr is a float hyperparameter",
            "cast to the gradient's dtype every step: a bfloat16 lr for bfloat16 gradients",
            "examples/findings.py --only mlx", _mlx_bf16),
    Finding("paddle-float32-attrs", "Paddle RMSProp", "float64 parameters run in float64",
            "rho, epsilon and momentum are float32 op attributes", "examples/findings.py --only paddle-float32",
            _paddle_rounding),
    Finding("paddle-l2", "Paddle RMSProp", "weight_decay like Keras' (decoupled)",
            "weight_decay=float is L2 added to the gradient before the op (torch's coupled form)",
            "rmsprop-harness parity --presets paddle,keras --scales none lr=0.001 decay=0.9 eps=1e-07 "
            "weight_decay=0.01", _paddle_l2),
    Finding("jax-example-optax", "jax.example_libraries rmsprop_momentum", "JAX's own older optimizer, its own form",
            "the same mathematics as optax.rmsprop with the same settings",
            "rmsprop-harness parity --presets jax_example,optax lr=0.001 momentum=0.9", _jax_example_optax),
    Finding("keras2-eps", "standalone Keras 2.x", "what 'Keras RMSprop' means in old papers and code",
            "eps outside the sqrt; every later Keras puts it inside",
            "rmsprop-harness parity --presets keras2,keras none", _keras2),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="findings whose id starts with this")
    args = parser.parse_args(argv)
    chosen = [f for f in FINDINGS if f.id.startswith(args.only)]
    if not chosen:
        print(f"findings: no finding id starts with {args.only!r}", file=sys.stderr)
        return 2
    print("| id | implementation | assumed | found | measured | command |\n|---|---|---|---|---|---|")
    for f in chosen:
        try:
            measured = f.measure()
        except (RuntimeError, ImportError, KeyError) as exc:
            measured = f"not measured: {exc}"
        print(f"| {f.id} | {f.implementation} | {f.assumed} | {f.found} | {measured} | `{f.command}` |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
