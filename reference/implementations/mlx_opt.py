"""MLX `mlx.optimizers.RMSprop` (0.32.4): torch's form, no momentum, lr cast to the gradient's dtype."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def mlx(learning_rate: A.LearningRate, alpha: A.Number = 0.99, eps: A.Number = 1e-8) -> RMSpropSpec:
    """`mlx.optimizers.RMSprop(learning_rate, alpha=0.99, eps=1e-8)` (``python/mlx/optimizers/optimizers.py``):
    ``v = alpha*v + (1-alpha)*g^2`` from zero, ``w -= lr*g/(sqrt(v) + eps)`` (eps outside, torch's form); no
    momentum, centered or weight decay; eps must be > 0. The learning rate is stored as an ``mx.array``
    (float32) and cast to the gradient's dtype every step: float32-rounded for float32 and float64 gradients,
    bfloat16-rounded for bfloat16 ones."""
    fw = "mlx"
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate, callables="step")
    eps_value = A.number(fw, "eps", eps)
    if eps_value <= 0:
        from ..errors import InputValueError

        raise InputValueError(f"mlx: RMSprop epsilon should be >0, {eps!r} was provided instead")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "alpha", alpha, high=1.0),
        eps=eps_value,
        eps_placement="outside",
        initial_accumulator=0.0,
        lr_placement="in_buffer",
        hyperparam_rounding={"lr"},
        framework=fw,
        notes=("the learning rate is an mx.array (float32) cast to the gradient's dtype: a bfloat16 lr for "
               "bfloat16 gradients",),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    return {"learning_rate": A.lr_of(spec), "alpha": spec.decay, "eps": spec.eps}


RECORDS = [Implementation(
    name="mlx", preset=mlx, title="mlx.optimizers.RMSprop", call="mlx.optimizers.RMSprop({})", native=_native,
    knobs={"lr": "learning_rate", "decay": "alpha", "eps": "eps"}, required={"learning_rate": 0.001},
    packages=("mlx",), rank=70, adapters=("harness.adapters.mlx_adapter:MLX",),
    rewrites=("the learning rate is rounded to float32, and to the gradient's dtype when that is narrower",),
    examples=({"learning_rate": 0.01}, {"learning_rate": 0.003, "alpha": 0.9, "eps": 1e-3}),
)]
