"""Optax `optax.rmsprop` (0.2.8): ``chain(scale_by_rms|scale_by_stddev, scale_by_learning_rate, trace)``."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def optax(
    learning_rate: A.LearningRate,
    decay: A.Number = 0.9,
    eps: A.Number = 1e-8,
    initial_scale: A.Number = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: A.Number | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> RMSpropSpec:
    """`optax.rmsprop` (0.2.8): ``chain(scale_by_rms|scale_by_stddev, scale_by_learning_rate,
    trace)``, so lr sits in the momentum buffer; a schedule is called with count 0 first."""
    fw = "optax"
    lr_value, schedule = A.lr(fw, "learning_rate", learning_rate, callables="step")
    notes: list[str] = []
    mom = None if momentum is None else A.number(fw, "momentum", momentum)
    if A.flag(fw, "nesterov", nesterov) and mom is None:
        notes.append("nesterov=True has no effect without momentum")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "decay", decay, high=1.0),
        eps=A.number(fw, "eps", eps),
        eps_placement="inside" if A.flag(fw, "eps_in_sqrt", eps_in_sqrt) else "outside",
        initial_accumulator=A.number(fw, "initial_scale", initial_scale),
        centered=A.flag(fw, "centered", centered),
        momentum=mom or 0.0,
        nesterov=bool(nesterov) and mom is not None,
        lr_placement="in_buffer",
        bias_correction=A.flag(fw, "bias_correction", bias_correction),
        hyperparam_rounding="exact",
        framework=fw,
        notes=tuple(notes),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    return {"learning_rate": A.lr_of(spec), "decay": spec.decay, "eps": spec.eps,
            "initial_scale": spec.initial_accumulator, "eps_in_sqrt": spec.effective_eps_placement == "inside",
            "centered": spec.centered, "momentum": spec.momentum or None, "nesterov": spec.nesterov,
            "bias_correction": spec.bias_correction}


RECORDS = [Implementation(
    name="optax", preset=optax, title="optax.rmsprop", call="optax.rmsprop({})", native=_native,
    knobs={"lr": "learning_rate", "decay": "decay", "eps": "eps", "momentum": "momentum", "centered": "centered"},
    knob_values={"momentum": lambda value: {"momentum": value or None}},  # optax's "no momentum" is None
    required={"learning_rate": 0.001}, packages=("optax", "jax", "jaxlib"), rank=50,
    adapters=("harness.adapters.optax_adapter:Optax",),
    rewrites=("nesterov=True without momentum has no effect",))]
