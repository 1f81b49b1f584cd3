"""tf_keras (Keras 2): the "new" `tf_keras.optimizers.RMSprop` and `tf_keras.optimizers.legacy.RMSprop`."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A
from .keras3 import KERAS_KNOB_VALUES, KERAS_KNOBS, _keras_clips, _keras_ema, keras3_native


@A.checked
def tf_keras(
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
    ema_overwrite_frequency: int | None = 100,
    jit_compile: bool = True,
    name: str = "RMSprop",
    **kwargs: Any,
) -> RMSpropSpec:
    """`tf_keras.optimizers.RMSprop` (2.21, the Keras 2 "new" optimizer): eps inside (rsqrt),
    lr float32, first clip that is set wins (clipnorm, global_clipnorm, clipvalue)."""
    fw = "tf_keras"
    kwargs = dict(kwargs)
    kwargs.pop("is_legacy_optimizer", None)
    notes: list[str] = []
    if kwargs.pop("lr", None):
        notes.append("lr= is deprecated and silently IGNORED (only a warning is logged); "
                     "learning_rate is used")
    for legacy in ("decay", "gradient_aggregator", "gradient_transformers"):
        if legacy in kwargs:
            raise InputValueError(f"{fw}: {legacy} is deprecated in the new tf_keras optimizer; "
                             "use tf_keras_legacy")
    A.unknown(fw, kwargs)
    A.flag(fw, "jit_compile", jit_compile)
    if clipnorm is not None and global_clipnorm is not None:
        raise InputValueError(f"{fw}: cannot accept both clipnorm and global_clipnorm")
    clips = _keras_clips(fw, notes, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                         clipvalue=clipvalue)
    set_ = [k for k in ("clipnorm", "global_clipnorm", "clipvalue") if clips[k] is not None]
    for ignored in set_[1:]:
        notes.append(f"{ignored} is silently ignored because {set_[0]} is set")
        clips[ignored] = None
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate)
    wd = None if weight_decay is None else A.number(fw, "weight_decay", weight_decay)
    ema = _keras_ema(fw, use_ema, ema_momentum, ema_overwrite_frequency, notes, "initial_params")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "rho", rho, high=1.0),
        eps=A.number(fw, "epsilon", epsilon),
        eps_placement="inside",
        centered=A.flag(fw, "centered", centered),
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        weight_decay=wd or 0.0,
        weight_decay_mode="none" if wd is None else "decoupled",
        hyperparam_rounding={"lr", "weight_decay"},
        framework=fw,
        notes=tuple(notes),
        **clips,
        **ema,
    )


@A.checked
def tf_keras_legacy(
    learning_rate: A.LearningRate = 0.001,
    rho: A.Number = 0.9,
    momentum: A.Number = 0.0,
    epsilon: A.Number = 1e-7,
    centered: bool = False,
    name: str = "RMSprop",
    **kwargs: Any,
) -> RMSpropSpec:
    """`tf_keras.optimizers.legacy.RMSprop` (OptimizerV2): eps OUTSIDE the sqrt when
    momentum == 0 and inside when > 0; lr, rho, momentum and ``decay`` in float32;
    ``epsilon=0`` silently becomes 1e-7; every clip that is set applies, in order
    clipvalue, clipnorm, global_clipnorm; ``decay=`` is inverse-time lr decay."""
    fw = "tf_keras_legacy"
    allowed = {"clipnorm", "clipvalue", "lr", "decay", "global_clipnorm"}
    A.unknown(fw, {k: v for k, v in kwargs.items() if k not in allowed})
    for k, v in kwargs.items():
        if v is not None and A.number(fw, k, v, low=-math.inf) < 0:
            raise InputValueError(f"{fw}: {k}={v!r} is invalid, allowed range >= 0")
    if kwargs.get("clipnorm") is not None and kwargs.get("global_clipnorm") is not None:
        raise InputValueError(f"{fw}: cannot accept both clipnorm and global_clipnorm")
    notes: list[str] = []
    if "lr" in kwargs:
        learning_rate = kwargs["lr"]
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate)
    eps = A.hyper(fw, "epsilon", epsilon)
    if not eps:
        notes.append("epsilon=0 is silently replaced by backend epsilon 1e-7")
        eps = 1e-7
    # tf_keras takes its momentum path (the fused raw op, eps inside) for a tensor or callable momentum
    # whatever its value: `isinstance(momentum, tf.Tensor) or callable(momentum) or momentum > 0`
    forced = callable(momentum) or A.is_tf_tensor(momentum)
    mom = A.hyper(fw, "momentum", momentum, high=1.0)
    if forced:
        notes.append("momentum given as a tensor or callable: the momentum path (the raw op, eps inside the "
                     "sqrt) is taken whatever its value")
    elif mom == 0:
        notes.append("momentum == 0: eps goes OUTSIDE the sqrt (python path); "
                     "momentum > 0 uses the raw op with eps inside")
    clips = {k: kwargs.get(k) for k in ("clipvalue", "clipnorm", "global_clipnorm")}
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.hyper(fw, "rho", rho, high=1.0),
        eps=eps,
        eps_placement="inside",
        legacy_eps_switch=not forced,
        centered=A.flag(fw, "centered", centered),
        momentum=mom,
        lr_placement="in_buffer",
        hyperparam_rounding={"lr", "decay", "momentum", "inverse_time_decay"},
        inverse_time_decay=float(kwargs.get("decay") or 0.0),
        framework=fw,
        notes=tuple(notes),
        **clips,
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = keras3_native(spec)
    for dropped in ("loss_scale_factor", "gradient_accumulation_steps"):
        args.pop(dropped, None)
    return args


def _native_legacy(spec: RMSpropSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"learning_rate": A.lr_of(spec), "rho": spec.decay, "momentum": spec.momentum,
                            "epsilon": spec.eps, "centered": spec.centered}
    if spec.inverse_time_decay:
        args["decay"] = spec.inverse_time_decay
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        if getattr(spec, name) is not None:
            args[name] = getattr(spec, name)
    return args


_ADAPTER = "harness.adapters.tf_adapter:"
RECORDS = [
    Implementation(name="tf_keras", preset=tf_keras, title="tf_keras.optimizers.RMSprop",
                   call="tf_keras.optimizers.RMSprop({})", native=_native, knobs=KERAS_KNOBS,
                   knob_values=KERAS_KNOB_VALUES, packages=("tensorflow", "tf_keras"), rank=30,
                   adapters=(f"{_ADAPTER}TFKeras",),
                   rewrites=("lr= is ignored (learning_rate is used)", "a second clip argument is ignored")),
    Implementation(name="tf_keras_legacy", preset=tf_keras_legacy, title="tf_keras.optimizers.legacy.RMSprop",
                   call="tf_keras.optimizers.legacy.RMSprop({})", native=_native_legacy,
                   knobs={k: v for k, v in KERAS_KNOBS.items() if k != "weight_decay"},
                   packages=("tensorflow", "tf_keras"), rank=31, adapters=(f"{_ADAPTER}TFKerasLegacy",),
                   rewrites=("epsilon=0 becomes 1e-7", "eps goes outside the sqrt when momentum == 0",
                             "decay= is inverse-time lr decay")),
]
