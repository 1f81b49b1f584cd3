"""Divergence metrics: ulp, non-finite handling, online budget scales, and the float32 tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.adapters.base import Snapshot
from harness.base.streams import GradientStream, StreamSpec, cast, initial_params
from harness.conformance.metrics import divergence, errors, record_steps, reference_points, ulp
from reference import budget_scale, presets, run_reference
from reference.budget import run_tolerance, state_tolerance

SHAPES = {"weight": (2, 3), "bias": (2,)}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_ulp_is_the_dtype_spacing_including_subnormals_and_zero(dtype) -> None:
    np_dtype = np.dtype(dtype)
    info = np.finfo(np_dtype)
    values = np.array([0.0, info.smallest_subnormal, info.tiny, 1.0, 1.5, -3.0, 1000.0, info.max / 2], np_dtype)
    np.testing.assert_array_equal(ulp(values.astype(np.float64), dtype), np.spacing(np.abs(values)).astype(np.float64))


def test_bfloat16_ulp_has_eight_bits() -> None:
    assert ulp(np.array([1.0]), "bfloat16")[0] == 2**-7
    assert ulp(np.array([0.0]), "bfloat16")[0] == 2.0**-133


def test_errors_treat_agreeing_nonfinite_as_equal_and_one_sided_as_infinite() -> None:
    ref = np.array([1.0, np.nan, np.inf, 2.0, np.inf, 0.0])
    got = np.array([1.0, np.nan, np.inf, np.nan, -np.inf, 0.0])
    m = errors(got, ref, np.abs(np.nan_to_num(ref)), "float64")
    assert m["nonfinite_mismatch"] == 1  # position 3: NaN against 2.0 (inf vs -inf is two-sided)
    assert m["max_abs_err"] == np.inf and m["budget_ratio"] == np.inf
    ok = errors(got[:3], ref[:3], np.ones(3), "float64")
    assert ok == {"max_abs_err": 0.0, "max_rel_err": 0.0, "max_ulp": 0.0, "median_ulp": 0.0, "budget_ratio": 0.0,
                  "nonfinite_mismatch": 0}


def test_errors_values() -> None:
    ref = np.array([1.0, -4.0, 0.5])
    got = ref + np.array([2**-52, 0.0, -2**-40])
    m = errors(got, ref, np.array([2.0, 4.0, 1.0]), "float64")
    assert m["max_abs_err"] == 2**-40
    assert m["max_rel_err"] == 2**-40 / 0.5
    assert m["max_ulp"] == 2**-40 / 2**-53 and m["median_ulp"] == 1.0
    assert m["budget_ratio"] == pytest.approx(2**-40 / (2**-53 * 1.0))


def test_record_steps_are_log_spaced_and_end_at_the_last_step() -> None:
    steps = record_steps(1000, 16)
    assert steps[0] == 1 and steps[-1] == 1000 and list(steps) == sorted(set(steps))
    assert 12 <= len(steps) <= 17 and steps[5] < 20
    assert record_steps(1, 16) == (1,) and record_steps(7, 16) == tuple(range(1, 8))


def test_reference_points_match_the_offline_reference_and_budget_scale() -> None:
    spec = presets.torch(lr=0.01, momentum=0.9, centered=True)
    stream = GradientStream(StreamSpec("lognormal", 2), SHAPES)
    p0 = initial_params(SHAPES, 1)
    points = reference_points(spec, stream, p0, 40, "float32", record_steps(40, 8))
    p0_32 = {n: cast(p, "float32") for n, p in p0.items()}
    grads = [{n: cast(g, "float32") for n, g in stream.step(t).items()} for t in range(1, 41)]
    traj = run_reference(spec, p0_32, grads)
    for t, point in points.items():
        for n in SHAPES:
            np.testing.assert_array_equal(point.params[n], traj[n][t - 1])
            np.testing.assert_allclose(point.params_scale[n], budget_scale(traj[n], p0_32[n])[t - 1], rtol=1e-12)
        assert set(point.state) == {"nu", "mu", "trace"}
        assert np.all(point.state_scale["nu"]["weight"] >= point.state["nu"]["weight"])


def test_divergence_of_an_exact_copy_is_zero_and_an_offset_is_measured() -> None:
    spec = presets.torch(momentum=0.5)
    stream = GradientStream(StreamSpec("gaussian", 0), SHAPES)
    point = reference_points(spec, stream, initial_params(SHAPES, 0), 5, "float64", [5])[5]
    same = divergence(Snapshot(5, point.params, point.state), point, "float64")
    assert same["max_abs_err"] == 0 and same["nu_budget_ratio"] == 0 and same["trace_max_abs_err"] == 0
    moved = {n: p + 1e-9 for n, p in point.params.items()}
    row = divergence(Snapshot(5, moved, {}), point, "float64")
    assert row["max_abs_err"] == pytest.approx(1e-9, rel=1e-6) and "nu_budget_ratio" not in row


def _torch_float32(p0, grads, lr, alpha, eps, momentum, centered, wd):
    """torch's RMSprop written out in float32 arithmetic: an independent float32 implementation."""
    f = np.float32
    lr, alpha, eps, momentum, wd = f(lr), f(alpha), f(eps), f(momentum), f(wd)
    p = {n: x.astype(f) for n, x in p0.items()}
    v = {n: np.zeros_like(x) for n, x in p.items()}
    m = {n: np.zeros_like(x) for n, x in p.items()}
    b = {n: np.zeros_like(x) for n, x in p.items()}
    out = []
    for g in grads:
        for n in p:
            gn = g[n].astype(f) + wd * p[n] if wd else g[n].astype(f)
            v[n] = alpha * v[n] + (f(1) - alpha) * gn * gn
            d = v[n]
            if centered:
                m[n] = alpha * m[n] + (f(1) - alpha) * gn
                d = v[n] - m[n] * m[n]
            u = gn / (np.sqrt(d) + eps)
            if momentum:
                b[n] = momentum * b[n] + u
                u = b[n]
            p[n] = p[n] - lr * u
        out.append({n: x.astype(np.float64) for n, x in p.items()})
    return out


@given(lr=st.sampled_from([1e-3, 1e-2]), alpha=st.sampled_from([0.9, 0.99]), momentum=st.sampled_from([0.0, 0.9]),
       centered=st.booleans(), wd=st.sampled_from([0.0, 1e-2]), kind=st.sampled_from(["gaussian", "mixed_scale"]))
@settings(max_examples=24, deadline=None, derandomize=True)
def test_float32_tolerance_holds_for_an_independent_float32_implementation(lr, alpha, momentum, centered, wd, kind):
    """The float32 bound of `run_tolerance` is not vacuous and not violated by honest float32 arithmetic."""
    steps = 60
    spec = presets.torch(lr=lr, alpha=alpha, momentum=momentum, centered=centered, weight_decay=wd)
    stream = GradientStream(StreamSpec(kind, 5), SHAPES)
    p0 = initial_params(SHAPES, 3)
    record = record_steps(steps, 10)
    points = reference_points(spec, stream, p0, steps, "float32", record)
    grads = [{n: cast(g, "float32") for n, g in stream.step(t).items()} for t in range(1, steps + 1)]
    traj = _torch_float32(p0, grads, lr, alpha, 1e-8, momentum, centered, wd)
    worst = 0.0
    for t in record:
        row = divergence(Snapshot(t, traj[t - 1]), points[t], "float32")
        assert row["budget_ratio"] <= run_tolerance(spec, t, "float32"), (t, row)
        worst = max(worst, row["budget_ratio"])
    assert worst > 0.05  # float32 arithmetic is visible in these units: the metric measures something


def test_state_tolerances_grow_with_memory_and_are_wider_in_float64_units() -> None:
    spec = presets.torch(alpha=0.99, momentum=0.9)
    assert state_tolerance(spec, 10, "float64", "nu") < state_tolerance(spec, 1000, "float64", "nu")
    assert state_tolerance(spec, 1000, "float64", "nu") == state_tolerance(spec, 10**6, "float64", "nu")
    assert state_tolerance(spec, 100, "float64", "trace") > state_tolerance(spec, 100, "float64", "nu")
    with pytest.raises(ValueError, match="unknown state kind"):
        state_tolerance(spec, 1, "float64", "velocity")


def test_float16_rounding_in_the_subnormal_range_is_within_budget() -> None:
    """A float16 value below the smallest normal (6.1e-5) is rounded to the subnormal spacing 2^-24, not to
    u relative: a correct implementation's one-spacing error there must cost about one budget, not thousands."""
    ref = np.array([1e-6, 3e-7, 2e-5])
    x = ref + 2.0**-24  # one subnormal spacing off
    scale = np.abs(ref)  # a trajectory that never moved far from its (subnormal) values
    assert errors(x, ref, scale, "float16")["budget_ratio"] < 2.5
    assert errors(x, ref, scale, "float32")["budget_ratio"] > 1e3  # float32 resolves these values: a real error
    tiny = np.array([1e-40, 3e-41])  # float32's own subnormals keep their budget: the edge suite's underflow fails
    assert errors(tiny + 1e-42, tiny, tiny, "float32")["budget_ratio"] > 1e3
