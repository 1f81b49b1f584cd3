"""A new implementation, added the way a contributor adds one: its record (what would be
``reference/implementations/toy.py``) and its adapter (``harness/adapters/toy_adapter.py``).

"toy.RMSprop(step_size, beta, epsilon)": eps inside the square root, the accumulator from 0, no
momentum, weight decay or centering. The adapter is plain NumPy in the run dtype, written from
the formula (not from the reference), as a framework would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.adapters.base import Adapter, Snapshot, Task
from reference.implementations import Implementation
from reference.implementations import _args as A
from reference.spec import RMSpropSpec


@A.checked
def toy(step_size: A.Number = 1e-3, beta: A.Number = 0.95, epsilon: A.Number = 1e-6) -> RMSpropSpec:
    """toy.RMSprop: v = beta v + (1 - beta) g^2; p -= step_size g / sqrt(v + epsilon)."""
    fw = "toy"
    return RMSpropSpec(lr=A.number(fw, "step_size", step_size), decay=A.number(fw, "beta", beta, high=1.0),
                       eps=A.number(fw, "epsilon", epsilon), eps_placement="inside", initial_accumulator=0.0,
                       framework=fw)


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    return {"step_size": spec.lr, "beta": spec.decay, "epsilon": spec.eps}


RECORD = Implementation(
    name="toy", preset=toy, title="toy.RMSprop", call="toy.RMSprop(params, {})", native=_native,
    knobs={"lr": "step_size", "decay": "beta", "eps": "epsilon"}, packages=("numpy",), rank=90,
    adapters=("tests.toy_implementation:ToyAdapter",), rewrites=())


class ToyAdapter(Adapter):
    name = "toy"
    framework = "numpy"
    preset = "toy"
    dtypes = ("float32", "float64")
    device_kinds = ("cpu",)

    def available(self) -> str | None:
        return None

    def run(self, task: Task) -> Iterator[Snapshot]:
        kw = {"step_size": 1e-3, "beta": 0.95, "epsilon": 1e-6, **task.kwargs}
        dtype = np.dtype(task.dtype)
        lr, beta, eps = (dtype.type(kw[k]) for k in ("step_size", "beta", "epsilon"))
        p = task.initial()
        v = {n: np.zeros_like(x) for n, x in p.items()}
        for t, grads in task.gradients():
            step_lr = lr if task.lrs is None else dtype.type(task.lr(t))
            for n, g in grads.items():
                v[n] = beta * v[n] + (1 - beta) * g * g
                p[n] = p[n] - step_lr * g / np.sqrt(v[n] + eps)
            if t in task.record_steps:
                yield Snapshot(t, {n: x.astype(np.float64) for n, x in p.items()},
                               {"nu": {n: x.astype(np.float64) for n, x in v.items()}})
