"""timm `timm.optim.RMSpropTF` (1.0.31): PyTorch's RMSprop made to behave like TF1's."""

from __future__ import annotations

from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def timm(
    lr: A.LearningRate = 1e-2,
    alpha: A.Number = 0.9,
    eps: A.Number = 1e-10,
    weight_decay: A.Number = 0,
    momentum: A.Number = 0.0,
    centered: bool = False,
    decoupled_decay: bool = False,
    corrected_weight_decay: bool = False,
    lr_in_momentum: bool = True,
    caution: bool = False,
    foreach: bool | None = None,
) -> RMSpropSpec:
    """`timm.optim.RMSpropTF` (timm 1.0.31, ``timm/optim/rmsprop_tf.py``): the square average starts at ONE,
    ``v += (1-alpha)(g^2 - v)`` (TF's order), eps inside the sqrt (``sqrt(v - m^2 + eps)`` when centered),
    lr in the momentum buffer (``lr_in_momentum=True``, TF's form) or after it (False, torch's), weight decay
    coupled (``g += wd*p``) or, with ``decoupled_decay``, ``p *= 1 - lr*wd`` before the update.

    Unlike TF1 it keeps every hyperparameter exact (TF1 rounds lr, decay, momentum and eps to float32), so in
    float64 the two differ by that rounding: timm is TF1's semantics, not TF1's numbers."""
    fw = "timm"
    lr_value, schedule = A.lr(fw, "lr", lr, callables="none")
    if foreach is not None:
        A.flag(fw, "foreach", foreach)
    if A.flag(fw, "caution", caution):
        raise InputValueError("timm: caution=True (Cautious Optimizers' masking) has no reference semantics here")
    wd = A.number(fw, "weight_decay", weight_decay)
    decoupled = A.flag(fw, "decoupled_decay", decoupled_decay)
    notes: list[str] = []
    if A.flag(fw, "corrected_weight_decay", corrected_weight_decay):
        if decoupled and wd > 0 and schedule is not None:
            raise InputValueError("timm: corrected_weight_decay=True under a schedule scales the decay by "
                                  "lr^2/max_lr, which the reference does not model")
        notes.append("corrected_weight_decay=True: lr^2/max_lr equals lr at a constant lr")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "alpha", alpha, high=1.0),
        eps=A.number(fw, "eps", eps),
        eps_placement="inside",
        initial_accumulator=1.0,
        centered=A.flag(fw, "centered", centered),
        centered_order="sub_then_eps",
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer" if A.flag(fw, "lr_in_momentum", lr_in_momentum) else "after_buffer",
        weight_decay=wd,
        weight_decay_mode=("multiplicative" if decoupled else "coupled") if wd > 0 else "none",
        hyperparam_rounding="exact",
        framework=fw,
        notes=(*notes, "the square average starts at 1, as TF1's; hyperparameters stay exact (TF1 rounds them "
                       "to float32)"),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = {"lr": A.lr_of(spec), "alpha": spec.decay, "eps": spec.eps, "momentum": spec.momentum,
            "centered": spec.centered, "lr_in_momentum": spec.lr_placement == "in_buffer"}
    if spec.weight_decay > 0:
        args |= {"weight_decay": spec.weight_decay, "decoupled_decay": spec.weight_decay_mode == "multiplicative"}
    return args


RECORDS = [Implementation(
    name="timm", preset=timm, title="timm.optim.RMSpropTF", call="timm.optim.RMSpropTF(params, {})", native=_native,
    knobs={"lr": "lr", "decay": "alpha", "eps": "eps", "momentum": "momentum", "centered": "centered",
           "weight_decay": "weight_decay"},
    packages=("timm",), rank=60,
    adapters=("harness.adapters.timm_adapter:Single", "harness.adapters.timm_adapter:Foreach"),
    rewrites=("the square average starts at 1 (TF1's), which torch users porting to it rarely expect",),
    examples=({}, {"lr": 0.003, "momentum": 0.9}, {"lr": 0.003, "momentum": 0.9, "lr_in_momentum": False},
              {"lr": 0.003, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
              {"lr": 0.003, "weight_decay": 0.1, "decoupled_decay": True, "alpha": 0.95, "eps": 1e-3}),
)]
