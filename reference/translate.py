"""Semantics -> a framework's own arguments: `native_args(preset, spec)`.

Given the mathematics you want (an `RMSpropSpec`), `native_args` returns the
constructor arguments of one framework that compute it, or raises `Unsupported`
naming the first knob the framework cannot express (torch has no eps inside the
sqrt; Keras has no eps outside; only optax has bias correction; ...).

It is checked, not assumed: the arguments are fed back through the preset and the
result must have the same effective knobs as the request. Hyperparameter rounding
is the framework's own behaviour, not something one asks for, so it is not
compared (the reference for a framework always uses the framework's preset).
"""

from __future__ import annotations

from typing import Any

from . import implementations, presets
from .errors import InputError, InputValueError
from .implementations import KNOBS
from .spec import RMSpropSpec

#: knobs in the order a mismatch is reported (the first one that differs is named)
_ORDER = ("effective_eps_placement", "initial_accumulator", "centered", "centered_order", "lr_placement",
          "nesterov", "bias_correction", "weight_decay_mode", "maximize", "inverse_time_decay", "clipvalue",
          "clipnorm", "global_clipnorm", "loss_scale", "accumulation_steps", "ema_momentum",
          "ema_overwrite_frequency", "ema_start", "lr", "decay", "eps", "momentum", "weight_decay")
_IGNORED = {"hyperparam_rounding", "framework", "lr_schedule", "eps_placement", "legacy_eps_switch"}


class Unsupported(InputValueError):
    """The framework cannot compute the requested semantics; ``knob`` names what it lacks."""

    def __init__(self, preset: str, knob: str, wanted: Any, got: Any):
        knob = knob.removeprefix("effective_")
        self.preset, self.knob, self.wanted, self.got = preset, knob, wanted, got
        super().__init__(f"unsupported: {knob}={wanted} ({preset} has {knob}={got})")


def knob_args(preset: str, knob: str, value: Any) -> dict[str, Any]:
    """The native arguments that set one neutral knob in ``preset``'s framework (for suite matrices, parity
    and bench settings): ``knob_args("torch", "decay", 0.9) == {"alpha": 0.9}``. A neutral value (0, False)
    for an argument the framework lacks is ``{}``; any other value raises `Unsupported`."""
    args = implementations.get(preset).knob_args(knob, value)
    if args is None:
        if not value:
            return {}
        raise Unsupported(preset, knob, value, "none")
    return args


def native_args(preset: str, spec: RMSpropSpec) -> dict[str, Any]:
    """Arguments of ``preset``'s framework that compute ``spec``; `Unsupported` otherwise."""
    args = implementations.get(preset).native(spec)
    try:
        got = presets.get(preset)(**args)
    except InputError as exc:  # e.g. momentum > 1 for the legacy optimizer
        raise Unsupported(preset, "arguments", "these", str(exc)) from None
    want_knobs, got_knobs = spec.effective_knobs(), got.effective_knobs()
    for knob in _ORDER:
        if knob not in _IGNORED and want_knobs.get(knob) != got_knobs.get(knob):
            raise Unsupported(preset, knob, want_knobs.get(knob), got_knobs.get(knob))
    rest = [k for k in want_knobs if k not in _IGNORED and k not in _ORDER and want_knobs[k] != got_knobs[k]]
    if rest:
        raise Unsupported(preset, rest[0], want_knobs[rest[0]], got_knobs[rest[0]])
    return args


__all__ = ["KNOBS", "Unsupported", "knob_args", "native_args"]
