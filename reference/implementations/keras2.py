"""Standalone Keras 2.x (2.0–2.2.5) `keras.optimizers.RMSprop`: reference only, the semantics old code assumed."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def keras2(lr: A.Number = 0.001, rho: A.Number = 0.9, epsilon: A.Number | None = None,
           decay: A.Number = 0.0) -> RMSpropSpec:
    """Standalone Keras 2.0–2.2.5 `keras.optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0)`
    (``keras/optimizers.py``): ``a = rho*a + (1-rho)*g^2`` from zero, ``p -= lr_t*g/(sqrt(a) + epsilon)``,
    eps OUTSIDE the sqrt (``epsilon=None`` means ``K.epsilon()`` = 1e-7), and ``decay`` is inverse-time lr
    decay ``lr_t = lr/(1 + decay*iterations)`` (iterations from 0). lr, rho and decay are backend variables
    (float32). The semantics most pre-2019 Keras code and papers assumed; tf.keras' OptimizerV2 (TF 2.x) and
    Keras 3 moved eps inside. Reference only: these releases need TensorFlow 1.x or Theano, which no
    supported Python installs."""
    fw = "keras2"
    eps = 1e-7 if epsilon is None else A.number(fw, "epsilon", epsilon)
    return RMSpropSpec(
        lr=A.number(fw, "lr", lr),
        decay=A.number(fw, "rho", rho, high=1.0),
        eps=eps,
        eps_placement="outside",
        initial_accumulator=0.0,
        inverse_time_decay=A.number(fw, "decay", decay),
        hyperparam_rounding={"lr", "decay", "inverse_time_decay"},
        framework=fw,
        notes=("eps outside the sqrt (every later Keras puts it inside)",),
    )


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    return {"lr": spec.lr, "rho": spec.decay, "epsilon": spec.eps, "decay": spec.inverse_time_decay}


RECORDS = [Implementation(
    name="keras2", preset=keras2, title="keras.optimizers.RMSprop (standalone Keras 2.0-2.2)",
    call="keras.optimizers.RMSprop({})", native=_native, knobs={"lr": "lr", "decay": "rho", "eps": "epsilon"},
    rank=35, rewrites=("epsilon=None becomes K.epsilon() = 1e-7",),
    reference_only=("keras 2.0-2.2.5 need TensorFlow 1.x (or Theano) as their backend, and on Python 3.11 pip "
                    "says 'ERROR: No matching distribution found for tensorflow<2' (TensorFlow wheels start at "
                    "2.12 there); keras 2.3+ is tf.keras' OptimizerV2 already (the tf_keras_legacy preset)"),
)]
