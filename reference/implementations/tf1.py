"""TF1 `tf.compat.v1.train.RMSPropOptimizer` and the fused raw kernels it calls (`ResourceApply(Centered)RMSProp`)."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def tf1(
    learning_rate: A.LearningRate,
    decay: A.Number = 0.9,
    momentum: A.Number = 0.0,
    epsilon: A.Number = 1e-10,
    use_locking: bool = False,
    centered: bool = False,
    name: str = "RMSProp",
) -> RMSpropSpec:
    """`tf.compat.v1.train.RMSPropOptimizer`: the accumulator starts at ONE, eps inside,
    lr in the buffer, and every hyperparameter (lr, decay, momentum, eps) in float32."""
    fw = "tf1"
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate, callables="none-arg")
    A.flag(fw, "use_locking", use_locking)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.hyper(fw, "decay", decay, high=1.0),
        eps=A.hyper(fw, "epsilon", epsilon),
        eps_placement="inside",
        initial_accumulator=1.0,
        centered=A.flag(fw, "centered", centered),
        momentum=A.hyper(fw, "momentum", momentum),
        lr_placement="in_buffer",
        hyperparam_rounding={"lr", "decay", "momentum", "eps"},
        framework=fw,
        notes=("the accumulator starts at 1, not 0 (the TF docs' migration table omits this)",),
    )


# -------------------------------------------------------------- TF raw ops
@A.checked
def tf_raw(
    lr: A.LearningRate,
    rho: A.Number,
    momentum: A.Number,
    epsilon: A.Number,
    centered: bool = False,
    ms_init: A.Number = 0.0,
) -> RMSpropSpec:
    """`tf.raw_ops.ResourceApplyRMSProp` / `ResourceApplyCenteredRMSProp` (``centered``), the
    fused C++ kernels that TF1 and the legacy Keras momentum path call: eps inside, lr in the
    ``mom`` buffer (which always exists; with momentum 0 it holds ``lr*g/den``). The op has
    no defaults: lr, rho, momentum and epsilon are its scalar inputs, in the variable's
    dtype; ``ms_init`` is the caller's initial mean square (TF1 uses 1)."""
    fw = "tf_raw"
    lr_value, schedule = A.lr(fw, "lr", lr, callables="none")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "rho", rho, high=1.0),
        eps=A.number(fw, "epsilon", epsilon),
        eps_placement="inside",
        initial_accumulator=A.number(fw, "ms_init", ms_init),
        centered=A.flag(fw, "centered", centered),
        centered_order="sub_then_eps",
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        hyperparam_rounding="exact",
        framework=fw,
    )


def _native_tf1(spec: RMSpropSpec) -> dict[str, Any]:
    return {"learning_rate": A.lr_of(spec), "decay": spec.decay, "momentum": spec.momentum, "epsilon": spec.eps,
            "centered": spec.centered}


def _native_raw(spec: RMSpropSpec) -> dict[str, Any]:
    return {"lr": A.lr_of(spec), "rho": spec.decay, "momentum": spec.momentum, "epsilon": spec.eps,
            "centered": spec.centered, "ms_init": spec.initial_accumulator}


def _raw_call(args: dict[str, Any]) -> str:
    op = "ResourceApplyCenteredRMSProp" if args.get("centered") else "ResourceApplyRMSProp"
    shown = ", ".join(f"{k}={args[k]!r}" for k in ("lr", "rho", "momentum", "epsilon"))
    return f"tf.raw_ops.{op}(var, ms, mom, {shown}, grad)  # ms initialised to {args.get('ms_init', 0.0)!r}"


_ADAPTER = "harness.adapters.tf_adapter:"
RECORDS = [
    Implementation(name="tf1", preset=tf1, title="tf.compat.v1.train.RMSPropOptimizer",
                   call="tf.compat.v1.train.RMSPropOptimizer({})", native=_native_tf1,
                   knobs={"lr": "learning_rate", "decay": "decay", "eps": "epsilon", "momentum": "momentum",
                          "centered": "centered"},
                   required={"learning_rate": 0.001}, packages=("tensorflow",), rank=40,
                   adapters=(f"{_ADAPTER}TF1", f"{_ADAPTER}TF1Function"),
                   rewrites=("the accumulator starts at 1", "every hyperparameter is rounded to float32")),
    Implementation(name="tf_raw", preset=tf_raw, title="tf.raw_ops.ResourceApply(Centered)RMSProp",
                   call="tf.raw_ops.ResourceApplyRMSProp(var, ms, mom, {}, grad)", native=_native_raw,
                   call_text=_raw_call,
                   knobs={"lr": "lr", "decay": "rho", "eps": "epsilon", "momentum": "momentum", "centered": "centered"},
                   required={"lr": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}, parity=False,
                   packages=("tensorflow",), rank=41, adapters=(f"{_ADAPTER}TFRaw",)),
]
