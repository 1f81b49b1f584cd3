"""`keras.optimizers.RMSprop` (Keras 3); the backend is fixed by KERAS_BACKEND in the worker."""

from __future__ import annotations

import os

import numpy as np

from ._common import missing, stack, steps


def available() -> str | None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return missing("keras", {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend])


def run_case(case: dict) -> dict[str, np.ndarray]:
    import keras

    names = list(case["params0"])
    variables = [keras.Variable(case["params0"][n], dtype=case["dtype"], name=n) for n in names]
    opt = keras.optimizers.RMSprop(**case["kwargs"])
    lrs = case.get("lrs")
    out = []
    for t in range(steps(case)):
        grads = [keras.ops.convert_to_tensor(case["grads"][n][t], dtype=case["dtype"]) for n in names]
        if lrs is not None:
            opt.learning_rate = float(lrs[t])
        opt.apply(grads, variables)
        out.append({n: keras.ops.convert_to_numpy(v.value) for n, v in zip(names, variables, strict=True)})
    return stack(out, names)
