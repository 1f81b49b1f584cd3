"""Semantics -> native arguments: every preset round-trips, and what a framework lacks is named."""

from __future__ import annotations

import pytest

from reference import RMSpropSpec, presets
from reference.translate import Unsupported, native_args

from .configs import CONFIGS

_COMPARED = lambda s: {k: v for k, v in s.effective_knobs().items()  # noqa: E731
                       if k not in ("hyperparam_rounding", "framework", "eps_placement", "legacy_eps_switch")}


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if not c.schedule], ids=lambda c: c.id)
def test_a_preset_translates_back_to_itself(cfg) -> None:
    spec = cfg.spec()
    args = native_args(cfg.preset, spec)
    assert _COMPARED(presets.get(cfg.preset)(**args)) == _COMPARED(spec)


@pytest.mark.parametrize(("preset", "spec", "knob"), [
    ("torch", RMSpropSpec(eps_placement="inside"), "eps_placement=inside"),
    ("keras", presets.torch(), "eps_placement=outside"),
    ("tf1", presets.keras(), "initial_accumulator=0.0"),
    ("tf_raw", presets.keras(weight_decay=0.1), "weight_decay_mode=decoupled"),
    ("keras", presets.optax(1e-3, bias_correction=True), "bias_correction=True"),
    ("optax", presets.torch(weight_decay=0.1), "weight_decay_mode=coupled"),
    ("keras", presets.torch(momentum=0.9, eps=0.0).replace(eps_placement="inside"), "lr_placement=after_buffer"),
    ("torch", presets.optax(1e-2, momentum=0.9, nesterov=True, eps_in_sqrt=False), "lr_placement=in_buffer"),
])
def test_what_a_framework_cannot_express_is_named(preset, spec, knob) -> None:
    with pytest.raises(Unsupported, match=f"^unsupported: {knob} "):
        native_args(preset, spec)


def test_cross_framework_translations_that_exist() -> None:
    torch_like = presets.torch(lr=0.01, alpha=0.99, eps=1e-8)
    assert native_args("optax", torch_like)["eps_in_sqrt"] is False
    legacy = native_args("tf_keras_legacy", torch_like)  # momentum 0: the legacy optimizer puts eps outside
    assert legacy == {"learning_rate": 0.01, "rho": 0.99, "momentum": 0.0, "epsilon": 1e-8, "centered": False}
    keras_like = presets.keras(learning_rate=1e-3, momentum=0.9, centered=True)
    assert native_args("optax", keras_like)["momentum"] == 0.9
    tf1_like = presets.tf1(1e-3, momentum=0.9)  # the fused kernel with ms_init=1 is TF1
    assert native_args("tf_raw", tf1_like) == {"lr": 1e-3, "rho": 0.9, "momentum": 0.9, "epsilon": 1e-10,
                                               "centered": False, "ms_init": 1.0}
