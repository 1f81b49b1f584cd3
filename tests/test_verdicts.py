"""Missing or broken results never pass (issue 14, section 2), through the real runner and worker.

Each hostile behaviour of the stand-in adapter (`tests.fake_adapter`) must become an ``error`` row for that
task alone while the other tasks of the same worker still pass; comparisons that test nothing are
``degenerate``; complex numbers are refused, never truncated; the presets follow their frameworks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.adapters import ADAPTERS, AdapterInfo
from harness.conformance.metrics import record_steps
from harness.conformance.runner import run_suite
from reference import presets, run_reference
from reference.errors import InputError, InputTypeError, InputValueError

SUITE = """
name = "hostile"
[defaults]
adapters = ["fake"]
steps = 20
records = 9
dtypes = ["float64"]
devices = ["cpu"]
shapes = { w = [3, 4], b = [2] }
"""
HOSTILE = ("none", "first", "missing-tensor", "wrong-shape", "wrong-step", "duplicate-step", "non-array", "complex",
           "object", "endless", "exit")


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    return monkeypatch


def _suite(tmp_path, behaviours: dict[int, str], extra: str = "") -> str:
    cases = "".join(f'[[case]]\nname = "c{seed}"\nseed = {seed}\n{extra}' for seed in behaviours)
    path = tmp_path / "s.toml"
    path.write_text(SUITE + cases)
    return str(path)


def test_every_hostile_result_is_an_error_row_for_its_task_only(fake, tmp_path) -> None:
    behaviours = {i + 1: b for i, b in enumerate(HOSTILE)}
    behaviours[len(HOSTILE) + 1] = "ok"  # after every hostile task of the same worker, a good one still passes
    marker = tmp_path / "unpickled"
    fake.setenv("FAKE_MARKER", str(marker))
    for seed, behaviour in behaviours.items():
        fake.setenv(f"FAKE_{seed}", behaviour)
    result = run_suite(_suite(tmp_path, behaviours), out=tmp_path / "run")
    rows = result.summary.set_index("case")
    reasons = rows["reason"].to_dict()
    assert rows["status"].to_dict() == {**{f"c{s}": "error" for s, b in behaviours.items() if b != "ok"},
                                        f"c{len(HOSTILE) + 1}": "ok"}, reasons
    steps = record_steps(20, 9)
    assert steps == (1, 2, 3, 4, 7, 9, 14, 20)
    expect = {
        "none": "adapter produced 0 of 8 recorded steps (missing 1, 2, 3, 4, 7, 9 and 2 more)",
        "first": "adapter produced 1 of 8 recorded steps (missing 2, 3, 4, 7, 9, 14 and 1 more)",
        "missing-tensor": "parameters ['b'], expected ['w', 'b']",
        "wrong-shape": "parameter 'w' has shape (11,), expected (3, 4)",
        "wrong-step": "a snapshot of step 5, which is not a recorded step",
        "duplicate-step": "the snapshot of step 1 came after step 1",
        "non-array": "parameter 'w' is not an array of real numbers (dtype <U12, str)",
        "complex": "parameter 'w' is not an array of real numbers (dtype complex128",
        "object": "parameter 'w' is not an array of real numbers (dtype object",
        "endless": "the snapshot of step 1 came after step 1",
        "exit": "worker exited with code 0",
    }
    for seed, behaviour in behaviours.items():
        if behaviour != "ok":
            assert expect[behaviour] in reasons[f"c{seed}"], (behaviour, reasons[f"c{seed}"])
    assert not marker.exists()  # adapter output is never unpickled by the driver
    assert (rows.loc[rows["status"] == "error", "recorded"] == 0).all()
    assert result.exit_code == 1


def test_an_interrupted_worker_result_never_leaves_its_task_ok(fake, tmp_path) -> None:
    """Stopping after the first recorded step was 'ok' before; missing data fails closed now."""
    fake.setenv("FAKE_1", "first")
    result = run_suite(_suite(tmp_path, {1: "first"}), out=None)
    assert result.summary["status"].tolist() == ["error"] and result.exit_code == 1


@pytest.mark.parametrize(("extra", "why"), [
    ('args.fake = { lr = 1e308 }\n', "every parameter is non-finite on both sides"),  # inf/NaN after step 1
    ('stream = { kind = "zeros" }\n', "no parameter ever moves"),
    ('stream = { kind = "tiny", scale = 1e-300 }\n', "no parameter ever moves"),
])
def test_comparisons_that_test_nothing_are_degenerate_never_ok(fake, tmp_path, extra, why) -> None:
    result = run_suite(_suite(tmp_path, {1: "ok"}, extra), out=None)
    (row,) = result.summary.itertuples()
    assert row.status == "degenerate" and why in row.reason and "nothing was compared" in row.reason
    assert result.exit_code == 1


def test_a_nan_mid_run_still_compares_the_steps_before_it(fake, tmp_path) -> None:
    extra = 'stream = { kind = "nonfinite", at_steps = [5], value = "nan" }\n'
    (row,) = run_suite(_suite(tmp_path, {1: "ok"}, extra), out=None).summary.itertuples()
    assert row.status == "ok"


def test_complex_parameters_are_refused_never_truncated() -> None:
    z = np.array([1.0 + 2.0j, 3.0 - 1.0j], np.complex64)
    with pytest.raises(InputTypeError, match="complex parameters are not modelled: torch treats"):
        run_reference(presets.torch(), z, np.stack([z, z]))
    with pytest.raises(InputTypeError, match="complex"):
        run_reference(presets.optax(0.1), {"w": np.ones(2)}, [{"w": z}])
    from harness.base.streams import GradientStream, StreamError, StreamSpec

    with pytest.raises(StreamError, match="complex gradients are not modelled"):
        GradientStream(StreamSpec("arrays", 0, {"grads": {"w": np.ones((3, 2), np.complex128)}}))


# ------------------------------------------------------------------ presets follow their frameworks
class _FakeTFTensor:
    """Looks like a TensorFlow tensor to the presets (its class lives in a tensorflow module)."""

    def __init__(self, value: float):
        self.value = value

    def __float__(self) -> float:
        return self.value


_FakeTFTensor.__module__ = "tensorflow.python.framework.ops"


@pytest.mark.parametrize("momentum", [lambda: 0.0, _FakeTFTensor(0.0)])
def test_tf_keras_legacy_takes_the_momentum_path_for_a_tensor_or_callable_momentum(momentum) -> None:
    spec = presets.tf_keras_legacy(momentum=momentum)
    assert spec.effective_eps_placement == "inside" and spec.momentum == 0.0
    assert any("tensor or callable" in n for n in spec.notes)
    assert presets.tf_keras_legacy(momentum=0.0).effective_eps_placement == "outside"


def test_tf1_zero_argument_callables_are_called() -> None:
    spec = presets.tf1(learning_rate=lambda: 2.0, decay=lambda: 0.5, epsilon=lambda: 0.25)
    out = run_reference(spec, np.zeros(1), np.ones((2, 1)))
    v1 = 1.0 * 0.5 + 0.5  # TF1's accumulator starts at 1
    assert out[0, 0] == pytest.approx(-2.0 / math.sqrt(v1 + 0.25))
    with pytest.raises(InputTypeError, match="tf1: learning_rate must be a number or a callable with no arguments"):
        presets.tf1(learning_rate=lambda step: 0.1)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: presets.torch(lr=np.array([0.1, 0.2])), InputValueError, "torch: Tensor lr must be 1-element"),
    (lambda: presets.torch(lr="0.01"), InputTypeError, "torch: lr must be a number, got '0.01'"),
    (lambda: presets.torch(lr=lambda step: 0.1), InputTypeError, "torch: lr must be a number, got a callable"),
    (lambda: presets.keras(rho="0.9"), InputTypeError, "keras: rho must be a number"),
    (lambda: presets.optax(np.complex128(0.1)), InputTypeError, "optax: learning_rate must be a number"),
    (lambda: presets.keras(learning_rate=np.ones(3)), InputTypeError, "a tensor of 3 elements"),
    (lambda: presets.torch(betas=0.9), InputTypeError, "torch: got an unexpected keyword argument 'betas'"),
])
def test_preset_errors_match_the_framework_and_are_input_errors(call, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        call()
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError if error is InputValueError else TypeError)  # as the framework raises
    assert presets.torch(lr=np.array([0.5])).lr == 0.5  # a one-element tensor is a number


def _row(step: int = 1, params: float = 0.5, **state: float) -> dict:
    """A divergence row: the parameters' and each given state's budget ratio, tolerance 10 for all."""
    row = {"step": step, "budget_ratio": params, "tolerance": 10.0, "nonfinite_mismatch": 0, "max_abs_err": 1e-3,
           "max_rel_err": 1e-2}
    for kind in ("nu", "mu", "trace"):
        ratio = state.get(kind, float("nan"))
        row |= {f"{kind}_budget_ratio": ratio, f"{kind}_tolerance": 10.0, f"{kind}_nonfinite_mismatch": 0,
                f"{kind}_max_abs_err": 1e-3, f"{kind}_max_rel_err": 98.0}
    return row


def test_a_failing_row_says_which_quantity_diverged_first_and_what_it_points_at() -> None:
    """issue 17: the state before the parameters, and what the pattern means."""
    from harness.conformance.verdict import verdict

    status, reason, _ = verdict([_row(params=1e5, nu=1e6)], [])  # a wrong accumulator drags the parameters
    assert status == "fail" and reason.startswith("state nu: 1e+06 budgets") and "square average" in reason
    _, reason, _ = verdict([_row(params=1e5, nu=0.5)], [])  # the accumulator right, the parameters wrong
    assert reason.startswith("parameters:") and "state agrees" in reason and "update rule" in reason
    _, reason, _ = verdict([_row(params=1e5, nu=0.5, trace=1e4)], [])
    assert reason.startswith("state trace:") and "momentum" in reason
    _, reason, _ = verdict([_row(params=1e5)], [])  # no state exposed
    assert "reports no optimizer state" in reason
    _, reason, _ = verdict([_row(step=1, params=0.5, nu=0.5), _row(step=2, params=50.0, nu=0.5)], [])
    assert "at step 2" in reason  # the first failing step
