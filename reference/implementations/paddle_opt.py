"""PaddlePaddle `paddle.optimizer.RMSProp` (3.3.1): TF's form (eps inside, lr in the buffer), from zero."""

from __future__ import annotations

from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def paddle(learning_rate: A.LearningRate, rho: A.Number = 0.95, epsilon: A.Number = 1e-6, momentum: A.Number = 0.0,
           centered: bool = False, weight_decay: A.Number | None = None, grad_clip: None = None,
           name: str | None = None) -> RMSpropSpec:
    """`paddle.optimizer.RMSProp` (3.3.1; kernel ``phi/kernels/impl/rmsprop_kernel_impl.h``): ``ms = rho*ms +
    (1-rho)*g^2`` from zero, ``mom = momentum*mom + lr*g/sqrt(ms + eps)`` (``sqrt(ms - mg^2 + eps)`` centered),
    ``p -= mom``: eps inside, lr in the buffer. A float ``weight_decay`` is L2Decay: ``g += wd*p`` in Python
    before the op (coupled). rho, epsilon and momentum are the op's float attributes, so float32 even for float64
    parameters (measured: float64 runs match the reference only with those three rounded); lr is a variable of
    the parameters' dtype. Paddle's docstring says "Nesterov momentum"; the kernel is plain heavy-ball."""
    fw = "paddle"
    if grad_clip is not None:
        raise InputValueError("paddle: grad_clip objects are not driven by the harness; clip with a case's knobs")
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate, callables="none")
    wd = 0.0 if weight_decay is None else A.number(fw, "weight_decay", weight_decay)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "rho", rho, high=1.0),
        eps=A.number(fw, "epsilon", epsilon),
        eps_placement="inside",
        initial_accumulator=0.0,
        centered=A.flag(fw, "centered", centered),
        centered_order="sub_then_eps",
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        weight_decay=wd,
        weight_decay_mode="coupled" if wd > 0 else "none",
        hyperparam_rounding={"decay", "eps", "momentum"},
        framework=fw,
        notes=("rho, epsilon and momentum are float32 op attributes, even for float64 parameters",),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = {"learning_rate": A.lr_of(spec), "rho": spec.decay, "epsilon": spec.eps, "momentum": spec.momentum,
            "centered": spec.centered}
    if spec.weight_decay > 0:
        args["weight_decay"] = spec.weight_decay
    return args


RECORDS = [Implementation(
    name="paddle", preset=paddle, title="paddle.optimizer.RMSProp", call="paddle.optimizer.RMSProp({})",
    native=_native, knobs={"lr": "learning_rate", "decay": "rho", "eps": "epsilon", "momentum": "momentum",
                           "centered": "centered", "weight_decay": "weight_decay"},
    required={"learning_rate": 0.001}, packages=("paddlepaddle",), rank=65,
    adapters=("harness.adapters.paddle_adapter:Paddle",),
    rewrites=("rho, epsilon and momentum are rounded to float32 even for float64 parameters",),
    examples=({"learning_rate": 0.01}, {"learning_rate": 0.01, "momentum": 0.9},
              {"learning_rate": 0.003, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
              {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-3}),
)]
