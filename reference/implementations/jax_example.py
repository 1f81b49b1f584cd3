"""`jax.example_libraries.optimizers.rmsprop` and ``rmsprop_momentum`` (JAX's original, minimal optimizers)."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def jax_example(step_size: A.LearningRate, gamma: A.Number = 0.9, eps: A.Number = 1e-8,
                momentum: A.Number = 0.0) -> RMSpropSpec:
    """`jax.example_libraries.optimizers.rmsprop(step_size, gamma=0.9, eps=1e-8)` (jax 0.10.2): the square
    average starts at zero, ``x -= step_size(i)*g/sqrt(v + eps)`` (eps inside); with ``momentum`` > 0,
    ``rmsprop_momentum(step_size, gamma, eps, momentum)`` (whose own default is momentum=0.9): ``mom = momentum*mom
    + step_size(i)*g/sqrt(v + eps); x -= mom``, lr in the buffer (TF's form). ``step_size`` may be a schedule of
    the index ``i`` the caller passes to ``update`` (0 for the first step in the usual loop)."""
    fw = "jax_example"
    lr_value, schedule = A.lr(fw, "step_size", step_size, callables="step")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=A.number(fw, "gamma", gamma, high=1.0),
        eps=A.number(fw, "eps", eps),
        eps_placement="inside",
        initial_accumulator=0.0,
        momentum=A.number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        hyperparam_rounding="exact",
        framework=fw,
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    return {"step_size": A.lr_of(spec), "gamma": spec.decay, "eps": spec.eps, "momentum": spec.momentum}


def _call(args: dict[str, Any]) -> str:
    momentum = args.pop("momentum", 0.0)
    name = "rmsprop_momentum" if momentum else "rmsprop"
    if momentum:
        args["momentum"] = momentum
    return f"jax.example_libraries.optimizers.{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


RECORDS = [Implementation(
    name="jax_example", preset=jax_example, title="jax.example_libraries.optimizers.rmsprop",
    call="jax.example_libraries.optimizers.rmsprop({})", call_text=_call, native=_native,
    knobs={"lr": "step_size", "decay": "gamma", "eps": "eps", "momentum": "momentum"},
    required={"step_size": 0.001}, packages=("jax",), rank=55,
    adapters=("harness.adapters.jax_example_adapter:JaxExample",),
    examples=({"step_size": 0.01}, {"step_size": 0.01, "momentum": 0.9}, {"step_size": 0.003, "gamma": 0.99,
                                                                           "eps": 1e-3}),
)]
