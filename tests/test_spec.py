"""`RMSpropSpec` validation: bad values name the field and the allowed range."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import ROUNDABLE, RMSpropSpec


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("lr", -0.1, ">= 0"),
        ("lr", math.nan, ">= 0"),
        ("lr", "0.1", "real number"),
        ("decay", 1.5, "0 <= decay <= 1"),
        ("decay", -0.1, ">= 0"),
        ("eps", -1e-8, ">= 0"),
        ("eps", math.inf, "finite"),
        ("momentum", -0.9, ">= 0"),
        ("initial_accumulator", -1.0, ">= 0"),
        ("weight_decay", -0.1, ">= 0"),
        ("eps_placement", "middle", "inside | outside"),
        ("centered_order", "whatever", "sub_then_eps | eps_then_sub"),
        ("lr_placement", "before", "in_buffer | after_buffer"),
        ("weight_decay_mode", "l1", "none | coupled"),
        ("centered", 1, "True or False"),
        ("maximize", "yes", "True or False"),
        ("hyperparam_rounding", "bf16", "exact | lr_float32 | all_float32"),
        ("hyperparam_rounding", {"lr", "beta"}, "names from"),
        ("clipnorm", 0.0, "> 0"),
        ("clipvalue", -1.0, "> 0"),
        ("loss_scale", math.nan, "> 0"),
        ("accumulation_steps", 1, "integer >= 2"),
        ("accumulation_steps", 2.0, "integer >= 2"),
        ("ema_momentum", 1.5, "[0, 1]"),
        ("ema_overwrite_frequency", 0, "integer >= 1"),
        ("ema_start", "never", "first_update | initial_params"),
        ("lr_schedule", 0.1, "callable"),
    ],
)
def test_invalid_values_name_field_and_range(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"RMSpropSpec\.{field}=.*allowed.*{_re(allowed)}"):
        RMSpropSpec(**{field: value})


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_weight_decay_needs_a_mode() -> None:
    with pytest.raises(ValueError, match="weight_decay_mode"):
        RMSpropSpec(weight_decay=0.1)


def test_spec_is_frozen_and_replace_revalidates() -> None:
    spec = RMSpropSpec()
    with pytest.raises(AttributeError):
        spec.lr = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="decay"):
        spec.replace(decay=2.0)
    assert spec.replace(lr=0.5).lr == 0.5


def test_rounding_aliases_and_sets() -> None:
    assert RMSpropSpec(hyperparam_rounding="exact").hyperparam_rounding == frozenset()
    assert RMSpropSpec(hyperparam_rounding="lr_float32").rounding_label == "lr_float32"
    assert RMSpropSpec(hyperparam_rounding="all_float32").hyperparam_rounding == frozenset(ROUNDABLE)
    spec = RMSpropSpec(hyperparam_rounding=["lr", "eps"])
    assert spec.rounding_label == "float32:lr,eps"
    assert spec.rounded("lr", 0.1) == float.fromhex("0x1.99999a0000000p-4")  # float32(0.1)
    assert spec.rounded("decay", 0.1) == 0.1


def test_legacy_eps_switch() -> None:
    spec = RMSpropSpec(legacy_eps_switch=True, eps_placement="inside")
    assert spec.effective_eps_placement == "outside"
    assert spec.replace(momentum=0.5).effective_eps_placement == "inside"


def test_effective_knobs_hide_irrelevant_ones() -> None:
    knobs = RMSpropSpec(lr_placement="after_buffer").effective_knobs()
    assert knobs["lr_placement"] == "-" and knobs["centered_order"] == "-"
    knobs = RMSpropSpec(momentum=0.9, centered=True).effective_knobs()
    assert knobs["lr_placement"] == "in_buffer" and knobs["centered_order"] == "sub_then_eps"


@given(
    lr=st.floats(0, 10), decay=st.floats(0, 1), eps=st.floats(0, 1), momentum=st.floats(0, 2),
    centered=st.booleans(), placement=st.sampled_from(["inside", "outside"]),
)
def test_every_valid_combination_constructs(lr, decay, eps, momentum, centered, placement) -> None:
    spec = RMSpropSpec(lr=lr, decay=decay, eps=eps, momentum=momentum, centered=centered,
                       eps_placement=placement)
    assert spec == RMSpropSpec(**{k: v for k, v in vars(spec).items() if k not in ("lr_schedule",)})
    assert isinstance(spec.knobs(), dict)
