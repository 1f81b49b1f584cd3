"""The float64 reference against the exact oracle, and invariants of the recursion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import (
    UNIT_ROUNDOFF,
    RMSpropSpec,
    budget_ratio,
    init,
    presets,
    rounding_tolerance,
    run_reference,
    update,
)
from reference.exact import run_exact, sensitivity

from .configs import (
    CONFIGS,
    ILL_CONDITIONED,
    STEPS,
    Config,
    gradient_stream,
    model_params,
    per_step,
    schedule,
)

U64 = UNIT_ROUNDOFF["float64"]
PARAMS = model_params()
GRADS = gradient_stream(PARAMS)


def _worst_ratio(spec: RMSpropSpec, grads=GRADS, params=PARAMS, lrs=None) -> float:
    ref = run_reference(spec, params, per_step(grads), lrs)
    exact = run_exact(spec, params, per_step(grads), lrs)
    return max(float(budget_ratio(ref[n], exact[n], params[n], U64).max()) for n in params)


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.id not in ILL_CONDITIONED], ids=lambda c: c.id)
def test_reference_within_rounding_budget_of_exact(cfg: Config) -> None:
    spec = cfg.spec()
    lrs = schedule() if cfg.schedule else None
    assert _worst_ratio(spec, lrs=lrs) <= rounding_tolerance(spec, STEPS)


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.id not in ILL_CONDITIONED], ids=lambda c: c.id)
def test_matrix_is_well_conditioned(cfg: Config) -> None:
    s = sensitivity(cfg.spec(), PARAMS, per_step(GRADS), schedule() if cfg.schedule else None, trials=2)
    assert not s.ill_conditioned(), s


def test_sensitivity_flags_centered_bias_correction_at_step_1() -> None:
    """optax centered + bias_correction: v^ - m^^2 = 0 exactly at step 1."""
    spec = presets.optax(0.01, centered=True, bias_correction=True)
    s = sensitivity(spec, PARAMS, per_step(GRADS))
    assert s.ill_conditioned() and s.step == 1, s
    # and the harmless neighbour is not flagged
    assert not sensitivity(presets.optax(0.01, centered=True), PARAMS, per_step(GRADS)).ill_conditioned()


@st.composite
def random_specs(draw) -> RMSpropSpec:
    """Any combination of knobs, with hyperparameters in their realistic ranges."""
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
    wd = draw(st.sampled_from([0.0, 1e-3, 0.1]))
    return RMSpropSpec(
        lr=draw(st.floats(1e-4, 0.1)),
        decay=draw(st.sampled_from([0.5, 0.9, 0.99])),
        eps=draw(st.sampled_from([0.0, 1e-10, 1e-8, 1e-3, 1.0])),
        eps_placement=draw(st.sampled_from(["inside", "outside"])),
        initial_accumulator=draw(st.sampled_from([0.0, 0.1, 1.0])),
        centered=draw(st.booleans()),
        centered_order=draw(st.sampled_from(["sub_then_eps", "eps_then_sub"])),
        momentum=momentum,
        lr_placement=draw(st.sampled_from(["in_buffer", "after_buffer"])),
        nesterov=draw(st.booleans()),
        weight_decay=wd,
        weight_decay_mode=draw(st.sampled_from(["coupled", "decoupled", "multiplicative"])) if wd else "none",
        maximize=draw(st.booleans()),
        hyperparam_rounding=draw(st.sampled_from(["exact", "lr_float32", "all_float32"])),
        clipnorm=draw(st.sampled_from([None, 1.0])),
    )


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(spec=random_specs(), seed=st.integers(0, 2**16))
def test_random_specs_within_budget_unless_ill_conditioned(spec: RMSpropSpec, seed: int) -> None:
    params = model_params(seed)
    grads = gradient_stream(params, steps=20, seed=seed + 1)
    s = sensitivity(spec, params, per_step(grads), trials=2, seed=seed)
    ratio = _worst_ratio(spec, grads, params)
    if s.ill_conditioned():
        return  # no a-priori bound exists; sensitivity said so
    assert ratio <= rounding_tolerance(spec, 20), (ratio, s)


# ------------------------------------------------------------------ invariants
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_maximize_equals_negated_gradients(cfg: Config) -> None:
    spec = cfg.spec()
    up = run_reference(spec.replace(maximize=True), PARAMS, per_step(GRADS))
    neg = run_reference(spec.replace(maximize=False), PARAMS, per_step({n: -g for n, g in GRADS.items()}))
    for n in PARAMS:
        np.testing.assert_array_equal(up[n], neg[n])


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if not c.schedule], ids=lambda c: c.id)
def test_constant_lr_makes_lr_placements_agree(cfg: Config) -> None:
    """b' = mu*b + lr*u  vs  b = mu*b + u, step = lr*b: equal for constant lr, up to rounding."""
    spec = cfg.spec()
    a = run_reference(spec.replace(lr_placement="in_buffer"), PARAMS, per_step(GRADS))
    b = run_reference(spec.replace(lr_placement="after_buffer"), PARAMS, per_step(GRADS))
    tol = rounding_tolerance(spec, STEPS, implementations=2)
    for n in PARAMS:
        assert budget_ratio(a[n], b[n], PARAMS[n], U64).max() <= tol


def test_lr_placement_differs_under_a_schedule() -> None:
    spec = presets.torch(lr=0.01, momentum=0.9)
    a = run_reference(spec, PARAMS, per_step(GRADS), schedule())
    b = run_reference(spec.replace(lr_placement="in_buffer"), PARAMS, per_step(GRADS), schedule())
    assert np.max(np.abs(a["weight"] - b["weight"])) > 1e-4


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.spec().eps or c.spec().initial_accumulator],
                         ids=lambda c: c.id)
def test_zero_gradients_leave_parameters_unchanged(cfg: Config) -> None:
    spec = cfg.spec().replace(weight_decay=0.0, weight_decay_mode="none", momentum=0.0, nesterov=False)
    zeros = per_step({n: np.zeros_like(g) for n, g in GRADS.items()})
    out = run_reference(spec, PARAMS, zeros)
    for n in PARAMS:
        np.testing.assert_array_equal(out[n], np.broadcast_to(PARAMS[n], out[n].shape))


def test_zero_gradient_with_zero_eps_is_nan_as_in_torch() -> None:
    """0 / (sqrt(0) + 0): torch(eps=0) produces NaN too; the reference does not paper over it."""
    out = run_reference(presets.torch(eps=0.0), np.ones(2), np.zeros((2, 2)))
    assert np.isnan(out).all()


def test_momentum_keeps_moving_after_gradients_stop() -> None:
    spec = presets.torch(lr=0.01, momentum=0.9)
    grads = per_step(GRADS)[:5] + per_step({n: np.zeros_like(g) for n, g in GRADS.items()})[:5]
    out = run_reference(spec, PARAMS, grads)
    assert not np.array_equal(out["weight"][-1], out["weight"][-2])


def test_stateful_form_equals_run_reference_and_leaves_inputs_alone() -> None:
    spec = presets.torch(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)
    p0 = {n: p.copy() for n, p in PARAMS.items()}
    state, params = init(spec, PARAMS), PARAMS
    for g in per_step(GRADS):
        params, state = update(spec, state, params, g)
    for n in PARAMS:
        np.testing.assert_array_equal(PARAMS[n], p0[n])
        np.testing.assert_array_equal(params[n], run_reference(spec, PARAMS, per_step(GRADS))[n][-1])
    assert state.count == STEPS and state.updates == STEPS
    assert state.mu is not None and state.trace is not None


def test_single_array_and_generator_inputs() -> None:
    spec = presets.keras(learning_rate=0.01)
    p0, g = PARAMS["bias"], GRADS["bias"]
    from_array = run_reference(spec, p0, g)
    from_gen = run_reference(spec, p0, (x for x in g))
    assert from_array.shape == (STEPS, *p0.shape)
    np.testing.assert_array_equal(from_array, from_gen)
    np.testing.assert_array_equal(from_array, run_reference(spec, PARAMS, per_step(GRADS))["bias"])


def test_schedule_in_spec_equals_lrs_argument() -> None:
    lrs = schedule()
    spec = presets.optax(lambda count: lrs[count], momentum=0.9)
    a = run_reference(spec, PARAMS, per_step(GRADS))
    b = run_reference(presets.optax(0.5, momentum=0.9), PARAMS, per_step(GRADS), lrs)
    np.testing.assert_array_equal(a["weight"], b["weight"])


def test_tf1_initial_accumulator_and_eps_placement_change_results() -> None:
    """Knobs are not decorative: each one moves the trajectory."""
    base = presets.torch(lr=0.01, momentum=0.9, centered=True)
    ref = run_reference(base, PARAMS, per_step(GRADS))["weight"]
    for change in ({"eps_placement": "inside", "eps": 1e-3}, {"initial_accumulator": 1.0},
                   {"hyperparam_rounding": "all_float32"}, {"bias_correction": True},
                   {"nesterov": True}, {"centered_order": "eps_then_sub", "eps_placement": "inside",
                                        "eps": 1e-3}):
        other = run_reference(base.replace(**change), PARAMS, per_step(GRADS))["weight"]
        assert not np.array_equal(other, ref), change


def test_global_clipnorm_uses_every_tensor() -> None:
    spec = presets.keras(learning_rate=0.01, global_clipnorm=0.1)
    together = run_reference(spec, PARAMS, per_step(GRADS))
    alone = run_reference(spec, PARAMS["bias"], GRADS["bias"])
    assert not np.allclose(together["bias"], alone)


def test_shape_mismatch_is_a_clear_error() -> None:
    spec = presets.torch()
    with pytest.raises(ValueError, match="shape"):
        run_reference(spec, np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="do not match"):
        run_reference(spec, PARAMS, [{"weight": np.zeros((2, 3)), "bias": np.zeros(3), "scale": np.zeros(4)}])
    with pytest.raises(ValueError, match="lrs is shorter"):
        run_reference(spec, PARAMS["bias"], GRADS["bias"], lrs=[0.1])


def test_nonfinite_gradients_propagate_like_the_frameworks() -> None:
    g = GRADS["bias"].copy()
    g[3, 0] = np.nan
    out = run_reference(presets.torch(), PARAMS["bias"], g)
    assert np.isnan(out[3:, 0]).all() and np.isfinite(out[:, 1]).all()


def test_empty_stream_gives_empty_trajectory() -> None:
    out = run_reference(presets.torch(), PARAMS, [])
    assert out["weight"].shape == (0, 2, 3)
