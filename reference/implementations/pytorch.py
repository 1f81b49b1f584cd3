"""PyTorch `torch.optim.RMSprop` (2.13): eps outside the sqrt, lr after the momentum buffer, coupled L2."""

from __future__ import annotations

from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def torch(
    lr: A.LearningRate = 1e-2,
    alpha: A.Number = 0.99,
    eps: A.Number = 1e-8,
    weight_decay: A.Number = 0,
    momentum: A.Number = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> RMSpropSpec:
    """`torch.optim.RMSprop` (2.13): eps outside the sqrt, lr after the momentum buffer,
    coupled L2 weight decay added after ``maximize`` negates the gradient."""
    fw = "torch"
    lr_value, schedule = A.lr(fw, "lr", lr, callables="none")
    notes: list[str] = []
    if foreach and differentiable:
        raise InputValueError("torch: foreach=True and differentiable=True are mutually exclusive")
    for name, value in (("capturable", capturable), ("maximize", maximize),
                        ("differentiable", differentiable)):
        A.flag(fw, name, value)
    if foreach is not None:
        A.flag(fw, "foreach", foreach)
    if capturable:
        notes.append("capturable=True with a Tensor lr divides by -lr instead of multiplying: "
                     "same mathematics, different rounding")
    wd = A.number(fw, "weight_decay", weight_decay)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "alpha", alpha, high=1.0),
        eps=A.number(fw, "eps", eps),
        eps_placement="outside",
        initial_accumulator=0.0,
        centered=A.flag(fw, "centered", centered),
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="after_buffer",
        weight_decay=wd,
        weight_decay_mode="coupled" if wd > 0 else "none",
        maximize=bool(maximize),
        hyperparam_rounding="exact",
        framework=fw,
        notes=tuple(notes),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = {"lr": A.lr_of(spec), "alpha": spec.decay, "eps": spec.eps, "momentum": spec.momentum,
            "centered": spec.centered, "maximize": spec.maximize}
    if spec.weight_decay > 0:
        args["weight_decay"] = spec.weight_decay
    return args


RECORDS = [Implementation(
    name="torch", preset=torch, title="torch.optim.RMSprop", call="torch.optim.RMSprop(params, {})", native=_native,
    knobs={"lr": "lr", "decay": "alpha", "eps": "eps", "momentum": "momentum", "centered": "centered",
           "weight_decay": "weight_decay"},
    packages=("torch",), rank=10,
    adapters=("harness.adapters.torch_adapter:Single", "harness.adapters.torch_adapter:Foreach",
              "harness.adapters.torch_adapter:Capturable"),
    rewrites=("capturable=True with a Tensor lr divides by -lr instead of multiplying (same mathematics, other "
              "rounding)",))]
