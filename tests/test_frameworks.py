"""Each preset against the real framework optimizer, float64, 50 steps, identical gradients.

Every adapter runs all its configurations in one worker subprocess (frameworks
are process-global beasts); the comparison is in units of the float64 rounding
budget with the a-priori tolerance of `reference.rounding_tolerance` for two
implementations. A framework that is not installed skips with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference import UNIT_ROUNDOFF, budget_ratio, rounding_tolerance, run_reference
from reference.budget import budget_scale

from .configs import CONFIGS, STEPS, Config, gradient_stream, model_params, per_step, run_frameworks, schedule

pytestmark = pytest.mark.framework

PARAMS = model_params()
GRADS = gradient_stream(PARAMS)
LRS = schedule()


@pytest.fixture(scope="session")
def framework_results() -> dict[str, dict]:
    return run_frameworks(CONFIGS, PARAMS, GRADS)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_preset_matches_framework_float64(cfg: Config, framework_results: dict[str, dict]) -> None:
    result = framework_results[cfg.id]
    if "skipped" in result:
        pytest.skip(result["skipped"])
    assert "params" in result, result.get("error")
    spec = cfg.spec()
    params, grads = _in(cfg.dtype, PARAMS), per_step(_in(cfg.dtype, GRADS))
    ref = run_reference(spec, params, grads, LRS if cfg.schedule else None)
    tolerance = rounding_tolerance(spec, STEPS, implementations=2)
    quantized = _quantization_bounds(spec, params, grads, cfg.schedule)
    for name in PARAMS:
        ratio = budget_ratio(result["params"][name], ref[name], params[name], UNIT_ROUNDOFF[cfg.dtype])
        if quantized is not None:  # 8-bit state: the derived bound E on top of the rounding budget
            u_scale = budget_scale(ref[name], params[name]) * UNIT_ROUNDOFF[cfg.dtype]
            excess = np.abs(result["params"][name] - ref[name]) - quantized[name]
            ratio = (np.maximum(excess, 0.0) / u_scale).reshape(STEPS, -1).max(axis=1)
        rel = np.max(np.abs(result["params"][name] - ref[name]) / np.maximum(np.abs(ref[name]), 1e-300))
        assert ratio.max() <= tolerance, (
            f"{cfg.id} tensor {name}: {ratio.max():.1f} budgets at step {ratio.argmax() + 1} "
            f"> tolerance {tolerance:.0f} (max elementwise relative error {rel:.2e})"
        )


def _quantization_bounds(spec, params, grads, scheduled: bool) -> dict[str, np.ndarray] | None:
    """Per tensor, ``(T, *shape)`` bounds on what a quantized state adds (`reference.quantization`)."""
    if spec.state_quantization == "none":
        return None
    from reference.quantization import state_error_bounds

    bounds = state_error_bounds(spec, grads, params, range(1, STEPS + 1), LRS if scheduled else None)
    return {n: np.stack([bounds[t][0][n] for t in range(1, STEPS + 1)]) for n in params}


def _in(dtype: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as the framework receives them in ``dtype``, back in float64 (the reference's inputs)."""
    return {n: a.astype(dtype).astype(np.float64) for n, a in arrays.items()}


def test_schedules_distinguish_lr_placement(framework_results: dict[str, dict]) -> None:
    """With a varying lr, torch (after buffer) and optax (in buffer) really differ: the
    schedule configs are not vacuous, and each framework picks the documented side."""
    for cfg in (c for c in CONFIGS if c.schedule and c.preset in ("torch", "optax")):
        result = framework_results[cfg.id]
        if "params" not in result:
            pytest.skip(result.get("skipped") or result.get("error"))
        flipped = cfg.spec().replace(
            lr_placement="in_buffer" if cfg.spec().lr_placement == "after_buffer" else "after_buffer")
        other = run_reference(flipped, PARAMS, per_step(GRADS), LRS)
        assert np.max(np.abs(result["params"]["weight"] - other["weight"])) > 1e-4, cfg.id


@pytest.mark.parametrize("arg", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_keras_torch_clips_in_float32(arg: str, framework_results: dict[str, dict]) -> None:
    """Keras' torch backend clips with float32 constants and factors even for float64
    variables: without that rounding in the preset, float64 runs fail by ~1e7 budgets."""
    cfg = next(c for c in CONFIGS if c.adapter == "keras.torch" and arg in c.kwargs)
    result = framework_results[cfg.id]
    if "params" not in result:
        pytest.skip(result.get("skipped") or result.get("error"))
    spec = cfg.spec()
    assert "clip" in spec.hyperparam_rounding and any("clipping" in n for n in spec.notes)
    exact = spec.replace(hyperparam_rounding=spec.hyperparam_rounding - {"clip"})
    ref = run_reference(exact, PARAMS, per_step(GRADS))
    ratio = budget_ratio(result["params"]["weight"], ref["weight"], PARAMS["weight"], UNIT_ROUNDOFF["float64"])
    assert ratio.max() > 100 * rounding_tolerance(spec, STEPS, implementations=2)


# ------------------------------------------------------------------ issue 14: verdicts on the real frameworks
ISSUE_SUITE = """
name = "issue14"
[defaults]
adapters = ["torch.single", "torch.foreach"]
steps = 200
dtypes = ["float64", "float32"]
devices = ["cpu"]
shapes = { weight = [2, 3], bias = [2], w2 = [256, 128] }
stream = { kind = "mixed_scale" }
[[case]]
name = "eps1"
args.torch = { lr = 1e-3, alpha = 0.9, eps = 1.0, momentum = 0.9, weight_decay = 1e-2 }
[[case]]
name = "eps1e-3"
args.torch = { lr = 1e-3, alpha = 0.9, eps = 1e-3, momentum = 0.9, weight_decay = 1e-2 }
[[case]]
name = "lr1e308"
stream = { kind = "gaussian" }
args.torch = { lr = 1e308 }
"""


@pytest.fixture(scope="module")
def issue_run(tmp_path_factory):
    pytest.importorskip("torch")
    from harness.conformance.runner import run_suite

    path = tmp_path_factory.mktemp("issue14") / "s.toml"
    path.write_text(ISSUE_SUITE)
    return run_suite(path, out=None).summary.set_index(["case", "adapter", "dtype"])


@pytest.mark.parametrize("case", ["eps1", "eps1e-3"])
def test_torch_momentum_with_coupled_decay_is_not_a_false_failure(issue_run, case) -> None:
    """The momentum buffer sums (g + wd*p)/den: under cancellation its rounding is u*(|g| + wd*|p|)/den, which the
    trace's budget scale now includes (it failed with 'state trace: 44.2 budgets > tolerance 33 at step 1')."""
    rows = issue_run.loc[case]
    assert (rows["status"] == "ok").all(), rows["reason"].tolist()
    assert (rows["tolerance_used"] < 0.5).all() and (rows["trace_budget_ratio"].notna()).all()


def test_torch_with_an_infinite_step_is_degenerate(issue_run) -> None:
    """lr=1e308 used to be 'ok 2%' (inf and NaN on both sides); in float32 torch itself refuses the lr."""
    rows = issue_run.loc["lr1e308"].xs("float64", level="dtype")
    assert (rows["status"] == "degenerate").all() and rows["reason"].str.contains("non-finite on both sides").all()
    f32 = issue_run.loc["lr1e308"].xs("float32", level="dtype")
    assert (f32["status"] == "error").all() and f32["reason"].str.contains("cannot be converted").all()


LEGACY_MOMENTUM = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tf_keras
from reference import presets, run_reference

grads = np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.05]])
out = {}
for label, momentum in (("callable", lambda: 0.0), ("tensor", tf.constant(0.0, tf.float64)), ("float", 0.0)):
    var = tf.Variable(np.array([1.0, -1.0]), dtype=tf.float64)
    opt = tf_keras.optimizers.legacy.RMSprop(learning_rate=0.1, rho=0.9, momentum=momentum, epsilon=1e-3)
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
    spec = presets.tf_keras_legacy(learning_rate=0.1, rho=0.9, momentum=momentum, epsilon=1e-3)
    ref = run_reference(spec, np.array([1.0, -1.0]), grads)[-1]
    outside = run_reference(spec.replace(eps_placement="outside", legacy_eps_switch=False), np.array([1.0, -1.0]),
                            grads)[-1]
    got = var.numpy()
    out[label] = {"vs_preset": float(np.max(np.abs(got - ref) / np.abs(ref))),
                  "vs_eps_outside": float(np.max(np.abs(got - outside) / np.abs(outside)))}
print(json.dumps(out))
"""


def test_tf_keras_legacy_tensor_or_callable_momentum_matches_the_preset() -> None:
    """tf_keras takes its momentum path (eps inside) for a tensor or callable momentum even at 0; the preset used to
    put eps outside (1.3% off after 3 steps)."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("tf_keras not installed")
    from harness.process.spawn import child_env

    proc = subprocess.run([sys.executable, "-c", LEGACY_MOMENTUM], capture_output=True, text=True, timeout=300,
                          env=child_env({"TF_CPP_MIN_LOG_LEVEL": "3"}), check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for label in ("callable", "tensor", "float"):
        assert result[label]["vs_preset"] < 1e-12, result
    assert result["callable"]["vs_eps_outside"] > 1e-3 and result["tensor"]["vs_eps_outside"] > 1e-3


@pytest.mark.parametrize("wrong", [{"momentum": 0.9}, {"initial_accumulator": 1.0}, {"eps_placement": "inside"},
                                   {"lr": 0.012}])
def test_8bit_bound_still_catches_wrong_semantics(wrong, framework_results: dict[str, dict]) -> None:
    """The derived 8-bit allowance is a worst case (it grows with rho's memory), yet the early steps keep it
    tight: the real 8-bit trajectory fails against semantics it does not have, even a 20% larger lr."""
    cfg = next(c for c in CONFIGS if c.preset == "bitsandbytes_8bit" and not c.schedule)
    result = framework_results[cfg.id]
    if "params" not in result:
        pytest.skip(result.get("skipped") or result.get("error"))
    spec = cfg.spec()
    changes = dict(wrong)
    if "momentum" in changes:  # what a user who passed momentum=0.9 believes it runs (torch's form)
        changes["lr_placement"] = "after_buffer"
    params, grads = _in(cfg.dtype, PARAMS), per_step(_in(cfg.dtype, GRADS))
    bad = spec.replace(**changes)
    ref = run_reference(bad, params, grads)
    tolerance = rounding_tolerance(bad, STEPS, implementations=2)
    quantized = _quantization_bounds(spec, params, grads, False)  # what the framework's 8 bits can cost
    worst = 0.0
    for name in PARAMS:
        u_scale = budget_scale(ref[name], params[name]) * UNIT_ROUNDOFF[cfg.dtype]
        excess = np.maximum(np.abs(result["params"][name] - ref[name]) - quantized[name], 0.0)
        worst = max(worst, float((excess / u_scale).max()))
    assert worst > tolerance, (wrong, worst, tolerance)
