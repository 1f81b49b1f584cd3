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

from . import presets
from .errors import InputError, InputKeyError, InputValueError
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


def _lr(spec: RMSpropSpec) -> Any:
    return spec.lr_schedule if spec.lr_schedule is not None else spec.lr


def _keras3(spec: RMSpropSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"learning_rate": _lr(spec), "rho": spec.decay, "momentum": spec.momentum,
                            "epsilon": spec.eps, "centered": spec.centered}
    if spec.weight_decay_mode != "none" and spec.weight_decay > 0:
        args["weight_decay"] = spec.weight_decay
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        if getattr(spec, name) is not None:
            args[name] = getattr(spec, name)
    if spec.ema_momentum is not None:
        args |= {"use_ema": True, "ema_momentum": spec.ema_momentum,
                 "ema_overwrite_frequency": spec.ema_overwrite_frequency}
    if spec.loss_scale is not None:
        args["loss_scale_factor"] = spec.loss_scale
    if spec.accumulation_steps:
        args["gradient_accumulation_steps"] = spec.accumulation_steps
    return args


def _build(preset: str, spec: RMSpropSpec) -> dict[str, Any]:
    if preset == "torch":
        args = {"lr": _lr(spec), "alpha": spec.decay, "eps": spec.eps, "momentum": spec.momentum,
                "centered": spec.centered, "maximize": spec.maximize}
        if spec.weight_decay > 0:
            args["weight_decay"] = spec.weight_decay
        return args
    if preset in ("keras", "keras_jax", "keras_torch"):
        return _keras3(spec)
    if preset == "tf_keras":
        args = _keras3(spec)
        for dropped in ("loss_scale_factor", "gradient_accumulation_steps"):
            args.pop(dropped, None)
        return args
    if preset == "tf_keras_legacy":
        args = {"learning_rate": _lr(spec), "rho": spec.decay, "momentum": spec.momentum, "epsilon": spec.eps,
                "centered": spec.centered}
        if spec.inverse_time_decay:
            args["decay"] = spec.inverse_time_decay
        for name in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(spec, name) is not None:
                args[name] = getattr(spec, name)
        return args
    if preset == "tf1":
        return {"learning_rate": _lr(spec), "decay": spec.decay, "momentum": spec.momentum, "epsilon": spec.eps,
                "centered": spec.centered}
    if preset == "tf_raw":
        return {"lr": _lr(spec), "rho": spec.decay, "momentum": spec.momentum, "epsilon": spec.eps,
                "centered": spec.centered, "ms_init": spec.initial_accumulator}
    if preset == "optax":
        return {"learning_rate": _lr(spec), "decay": spec.decay, "eps": spec.eps,
                "initial_scale": spec.initial_accumulator, "eps_in_sqrt": spec.effective_eps_placement == "inside",
                "centered": spec.centered, "momentum": spec.momentum or None,
                "nesterov": spec.nesterov, "bias_correction": spec.bias_correction}
    if preset == "spec":  # the knobs themselves: everything that differs from the defaults
        default = RMSpropSpec()
        args = {k: getattr(spec, k) for k in spec.knobs()
                if k not in ("effective_eps_placement", "framework") and getattr(spec, k) != getattr(default, k)}
        if "hyperparam_rounding" in args:
            args["hyperparam_rounding"] = sorted(args["hyperparam_rounding"])
        return args
    raise InputKeyError(f"unknown preset {preset!r}; known: {', '.join(presets.PRESETS)}")


#: knob -> the argument that sets it, per preset ("*": every other preset; absent: no such argument)
_KNOB_ARGS: dict[str, dict[str, str]] = {
    "lr": {"torch": "lr", "tf_raw": "lr", "spec": "lr", "*": "learning_rate"},
    "decay": {"torch": "alpha", "tf1": "decay", "optax": "decay", "spec": "decay", "*": "rho"},
    "eps": {"torch": "eps", "optax": "eps", "spec": "eps", "*": "epsilon"},
    "momentum": {"*": "momentum"},
    "centered": {"*": "centered"},
    "weight_decay": {p: "weight_decay" for p in ("torch", "keras", "keras_jax", "keras_torch", "tf_keras", "spec")},
}
KNOBS = tuple(_KNOB_ARGS)


def knob_args(preset: str, knob: str, value: Any) -> dict[str, Any]:
    """The native arguments that set one knob in ``preset``'s framework (for suite matrices):
    ``knob_args("torch", "decay", 0.9) == {"alpha": 0.9}``. A neutral value (0, False) for an
    argument the framework lacks is ``{}``; any other value raises `Unsupported`."""
    names = _KNOB_ARGS[knob]
    name = names.get(preset, names.get("*"))
    if name is None:
        if not value:
            return {}
        raise Unsupported(preset, knob, value, "none")
    if knob == "momentum" and preset == "optax":
        return {"momentum": value or None}  # optax's own "no momentum" is None (no trace state)
    if knob == "weight_decay" and preset in ("keras", "keras_jax", "keras_torch", "tf_keras"):
        return {"weight_decay": value or None}
    if knob == "weight_decay" and preset == "spec":
        return {"weight_decay": value, "weight_decay_mode": "coupled" if value else "none"}
    return {name: value}


def native_args(preset: str, spec: RMSpropSpec) -> dict[str, Any]:
    """Arguments of ``preset``'s framework that compute ``spec``; `Unsupported` otherwise."""
    args = _build(preset, spec)
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
