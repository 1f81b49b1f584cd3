"""Keras 3 `keras.optimizers.RMSprop` on its TensorFlow, JAX and torch backends (3.15).

eps inside the sqrt, lr in the momentum buffer, lr a float32 (floatx) variable, decoupled weight decay
applied after clipping; the torch backend has its own foreach code (centered ``(v + eps) - m^2``,
``p *= 1 - wd*lr`` in float32, clipping with float32 constants)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


def _keras3(
    fw: str,
    *,
    learning_rate: A.LearningRate,
    rho: A.Number,
    momentum: A.Number,
    epsilon: A.Number,
    centered: bool,
    weight_decay: A.Number | None,
    clipnorm: A.Number | None,
    clipvalue: A.Number | None,
    global_clipnorm: A.Number | None,
    use_ema: bool,
    ema_momentum: A.Number,
    ema_overwrite_frequency: int | None,
    loss_scale_factor: A.Number | None,
    gradient_accumulation_steps: int | None,
    kwargs: dict[str, Any],
    centered_order: str,
    weight_decay_mode: str,
    rounding: frozenset[str],
) -> RMSpropSpec:
    notes: list[str] = []
    if "decay" in kwargs:
        kwargs = dict(kwargs)
        if kwargs.pop("decay") is not None:
            notes.append("decay= is accepted with a warning and ignored by Keras 3")
    A.unknown(fw, kwargs)
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate)
    if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise InputValueError(f"{fw}: only one of clipnorm, clipvalue and global_clipnorm can be set")
    clips = _keras_clips(fw, notes, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                         clipvalue=clipvalue)
    if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
        raise InputValueError(f"{fw}: gradient_accumulation_steps={gradient_accumulation_steps!r} "
                         "is invalid, allowed an integer >= 2")
    ema = _keras_ema(fw, use_ema, ema_momentum, ema_overwrite_frequency, notes, "first_update")
    wd = None if weight_decay is None else A.number(fw, "weight_decay", weight_decay)
    if "clip" in rounding and any(v is not None for v in clips.values()):
        notes.append("clipping on the torch backend runs in float32 even for float64 variables "
                     "(Python floats become float32 tensors; ops.maximum/minimum return float32)")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "rho", rho, high=1.0),
        eps=A.number(fw, "epsilon", epsilon),
        eps_placement="inside",
        centered=A.flag(fw, "centered", centered),
        centered_order=centered_order,
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        weight_decay=wd or 0.0,
        weight_decay_mode="none" if wd is None else weight_decay_mode,
        hyperparam_rounding=rounding,
        loss_scale=None if loss_scale_factor is None
        else A.number(fw, "loss_scale_factor", loss_scale_factor, low=math.ulp(0.0)),
        accumulation_steps=gradient_accumulation_steps or None,
        framework=fw,
        notes=tuple(notes),
        **clips,
        **ema,
    )


def _keras_clips(fw: str, notes: list[str], **clips: A.Number | None) -> dict[str, float | None]:
    """Keras (3 and tf_keras new) apply only a clip that is set and > 0."""
    out: dict[str, float | None] = {}
    for name, value in clips.items():
        if value is not None:
            value = A.number(fw, name, value, low=-math.inf)
            if value <= 0:
                notes.append(f"{name}={value:g} is silently ignored (clipping needs a value > 0)")
                value = None
        out[name] = value
    return out


def _keras_ema(fw: str, use_ema: bool, ema_momentum: A.Number, freq: int | None,
               notes: list[str], start: str) -> dict[str, Any]:
    if not A.flag(fw, "use_ema", use_ema):
        return {}
    m = A.number(fw, "ema_momentum", ema_momentum, high=1.0)
    if freq is not None and freq != 0 and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
        raise InputValueError(f"{fw}: ema_overwrite_frequency={freq!r} is invalid, "
                         "allowed None or an integer >= 1")
    if not freq:
        notes.append("use_ema=True without ema_overwrite_frequency leaves the trained variables "
                     "unchanged until finalize_variable_values()")
    return {"ema_momentum": m, "ema_overwrite_frequency": freq or None, "ema_start": start}


def _keras3_signature(framework: str, centered_order: str, weight_decay_mode: str,
                      rounding: frozenset[str], doc: str) -> Callable[..., RMSpropSpec]:
    def preset(
        learning_rate: A.LearningRate = 0.001,
        rho: A.Number = 0.9,
        momentum: A.Number = 0.0,
        epsilon: A.Number = 1e-7,
        centered: bool = False,
        weight_decay: A.Number | None = None,
        clipnorm: A.Number | None = None,
        clipvalue: A.Number | None = None,
        global_clipnorm: A.Number | None = None,
        use_ema: bool = False,
        ema_momentum: A.Number = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: A.Number | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> RMSpropSpec:
        return _keras3(
            framework, learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon,
            centered=centered, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
            global_clipnorm=global_clipnorm, use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency, loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, kwargs=kwargs,
            centered_order=centered_order, weight_decay_mode=weight_decay_mode, rounding=rounding,
        )

    preset.__name__ = preset.__qualname__ = framework
    preset.__doc__ = doc
    return A.checked(preset)


keras = _keras3_signature(
    "keras", "sub_then_eps", "decoupled", frozenset({"lr", "weight_decay"}),
    """`keras.optimizers.RMSprop` (Keras 3.15) on the TensorFlow backend, the Keras default:
    eps inside the sqrt, lr in the momentum buffer, lr a float32 variable (floatx), decoupled
    weight decay ``p -= p*wd*lr`` with wd cast through float32, applied after clipping.""",
)
keras_jax = _keras3_signature(
    "keras_jax", "sub_then_eps", "decoupled", frozenset({"lr"}),
    """Keras 3 on the JAX backend: as `keras`, but the weight decay factor stays exact.""",
)
keras_torch = _keras3_signature(
    "keras_torch", "eps_then_sub", "multiplicative",
    frozenset({"lr", "weight_decay", "wd_factor", "clip"}),
    """Keras 3 on the torch backend (its own foreach code): centered ``(v + eps) - m^2``,
    weight decay ``p *= 1 - wd*lr`` with the factor computed in float32, and clipping with
    float32 constants and factors (the backend's scalar conversion and ops.maximum/minimum).""",
)


def keras3_native(spec: RMSpropSpec) -> dict[str, Any]:
    """Keras 3's arguments for ``spec`` (also the base of tf_keras')."""
    args: dict[str, Any] = {"learning_rate": A.lr_of(spec), "rho": spec.decay, "momentum": spec.momentum,
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


#: Keras-style argument names; a zero weight decay is Keras' None (no decay step at all)
KERAS_KNOBS = {"lr": "learning_rate", "decay": "rho", "eps": "epsilon", "momentum": "momentum",
               "centered": "centered", "weight_decay": "weight_decay"}
KERAS_KNOB_VALUES = {"weight_decay": lambda value: {"weight_decay": value or None}}
_CALL = "keras.optimizers.RMSprop({})"
_ADAPTER = "harness.adapters.keras_adapter:"
_REWRITES = ("decay= is accepted with a warning and ignored", "a clip <= 0 is ignored")

RECORDS = [
    Implementation(name="keras", preset=keras, title="keras.optimizers.RMSprop (TensorFlow backend)", call=_CALL,
                   native=keras3_native, knobs=KERAS_KNOBS, knob_values=KERAS_KNOB_VALUES,
                   packages=("keras", "tensorflow"), rank=20, adapters=(f"{_ADAPTER}KerasTensorflow",),
                   rewrites=_REWRITES),
    Implementation(name="keras_jax", preset=keras_jax, title="keras.optimizers.RMSprop (JAX backend)",
                   call=_CALL + "  # KERAS_BACKEND=jax", native=keras3_native, knobs=KERAS_KNOBS,
                   knob_values=KERAS_KNOB_VALUES, packages=("keras", "jax", "jaxlib"), rank=21,
                   adapters=(f"{_ADAPTER}KerasJax",), rewrites=_REWRITES),
    Implementation(name="keras_torch", preset=keras_torch, title="keras.optimizers.RMSprop (torch backend)",
                   call=_CALL + "  # KERAS_BACKEND=torch", native=keras3_native, knobs=KERAS_KNOBS,
                   knob_values=KERAS_KNOB_VALUES, packages=("keras", "torch"), rank=22,
                   adapters=(f"{_ADAPTER}KerasTorch",),
                   rewrites=(*_REWRITES, "clipping runs in float32 even for float64 variables")),
]
