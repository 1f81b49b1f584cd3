"""The RL libraries' TF-like RMSprop clones: stable-baselines3 `RMSpropTFLike` and pfrl `RMSpropEpsInsideSqrt`.

Both are torch optimizers written to reproduce a TensorFlow or Lua original, and each moves only part of the
way: SB3 keeps torch's momentum form (lr after the buffer), pfrl keeps torch's zero start.
"""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A

_KNOBS = {"lr": "lr", "decay": "alpha", "eps": "eps", "momentum": "momentum", "centered": "centered",
          "weight_decay": "weight_decay"}


def _torch_like(fw: str, lr, alpha, eps, weight_decay, momentum, centered, v0: float, note: str) -> RMSpropSpec:
    lr_value, schedule = A.lr(fw, "lr", lr, callables="none")
    wd = A.number(fw, "weight_decay", weight_decay)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "alpha", alpha, high=1.0),
        eps=A.number(fw, "eps", eps),
        eps_placement="inside",
        initial_accumulator=v0,
        centered=A.flag(fw, "centered", centered),
        centered_order="sub_then_eps",
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="after_buffer",
        weight_decay=wd,
        weight_decay_mode="coupled" if wd > 0 else "none",
        hyperparam_rounding="exact",
        framework=fw,
        notes=(note,),
    )


@A.checked
def sb3(lr: A.LearningRate = 1e-2, alpha: A.Number = 0.99, eps: A.Number = 1e-8, weight_decay: A.Number = 0,
        momentum: A.Number = 0, centered: bool = False) -> RMSpropSpec:
    """stable-baselines3 `RMSpropTFLike` (2.9.2, ``common/sb2_compat/rmsprop_tf_like.py``): the square average
    starts at ONE and eps is inside the sqrt, as in TF1, but the momentum buffer is torch's (``b = mu*b + g/den;
    p -= lr*b``): equal to TF1 only while lr is constant. torch's defaults; coupled L2 weight decay."""
    return _torch_like("sb3", lr, alpha, eps, weight_decay, momentum, centered, 1.0,
                       "TF-like start (1) and eps, torch's momentum form: lr after the buffer, unlike TF1")


@A.checked
def pfrl(lr: A.LearningRate = 1e-2, alpha: A.Number = 0.99, eps: A.Number = 1e-8, weight_decay: A.Number = 0,
         momentum: A.Number = 0, centered: bool = False, capturable: bool = False, foreach: bool | None = None,
         maximize: bool = False, differentiable: bool = False) -> RMSpropSpec:
    """pfrl `RMSpropEpsInsideSqrt` (0.4.0, ``pfrl/optimizers/rmsprop_eps_inside_sqrt.py``): a subclass of
    `torch.optim.RMSprop` (its constructor and defaults) whose own ``step`` puts eps inside the sqrt; the square
    average starts at ZERO (not TF1's one), lr after the momentum buffer. It ignores torch's ``foreach``,
    ``capturable``, ``maximize`` and ``differentiable`` flags: its step never reads them."""
    for name, value in (("capturable", capturable), ("maximize", maximize), ("differentiable", differentiable)):
        A.flag("pfrl", name, value)
    spec = _torch_like("pfrl", lr, alpha, eps, weight_decay, momentum, centered, 0.0,
                       "eps inside the sqrt but the square average starts at 0 (the DQN Lua code's, not TF1's)")
    if maximize:
        spec = spec.replace(notes=(*spec.notes, "maximize=True is accepted by torch's constructor and IGNORED by "
                                                 "pfrl's step: it minimizes"))
    return spec


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = {"lr": A.lr_of(spec), "alpha": spec.decay, "eps": spec.eps, "momentum": spec.momentum,
            "centered": spec.centered}
    if spec.weight_decay > 0:
        args["weight_decay"] = spec.weight_decay
    return args


RECORDS = [
    Implementation(
        name="sb3", preset=sb3, title="stable_baselines3 RMSpropTFLike",
        call="stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike(params, {})", native=_native,
        knobs=_KNOBS, packages=("stable-baselines3",), rank=61, adapters=("harness.adapters.rl_adapter:SB3",),
        rewrites=("the momentum buffer is torch's (lr after it): a schedule makes it differ from TF1",),
        examples=({}, {"lr": 0.003, "momentum": 0.9}, {"lr": 0.003, "centered": True, "momentum": 0.5,
                                                         "weight_decay": 0.1}, {"alpha": 0.9, "eps": 1e-5})),
    Implementation(
        name="pfrl", preset=pfrl, title="pfrl RMSpropEpsInsideSqrt",
        call="pfrl.optimizers.RMSpropEpsInsideSqrt(params, {})", native=_native, knobs=_KNOBS,
        packages=("pfrl",), rank=62, adapters=("harness.adapters.rl_adapter:PFRL",),
        rewrites=("maximize=True (torch's constructor accepts it) is ignored: it minimizes",),
        examples=({}, {"lr": 2.5e-4, "alpha": 0.95, "eps": 1e-2, "centered": True},
                  {"lr": 0.003, "momentum": 0.9, "weight_decay": 0.1})),
]
