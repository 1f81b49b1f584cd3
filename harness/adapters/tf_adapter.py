"""TensorFlow-side optimizers: tf_keras (new), tf_keras legacy and TF1 ``RMSPropOptimizer``.

Which one runs is ``case["optimizer"]``: ``tf_keras`` | ``tf_keras_legacy`` | ``tf1``.
"""

from __future__ import annotations

import os

import numpy as np

from ._common import missing, stack, steps

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def available() -> str | None:
    return missing("tensorflow", "tf_keras")


def _optimizer(kind: str, kwargs: dict, current_lr):
    import tensorflow as tf

    if kind == "tf1":
        if current_lr is not None:
            kwargs = {**kwargs, "learning_rate": current_lr}  # eager: a zero-arg callable
        return tf.compat.v1.train.RMSPropOptimizer(**kwargs)
    import tf_keras

    cls = tf_keras.optimizers.legacy.RMSprop if kind == "tf_keras_legacy" else tf_keras.optimizers.RMSprop
    return cls(**kwargs)


def run_case(case: dict) -> dict[str, np.ndarray]:
    import tensorflow as tf

    kind = case["optimizer"]
    dtype = tf.as_dtype(case["dtype"])
    names = list(case["params0"])
    variables = [tf.Variable(case["params0"][n], dtype=dtype, name=n) for n in names]
    lrs = case.get("lrs")
    lr_box = [None]
    opt = _optimizer(kind, dict(case["kwargs"]), (lambda: lr_box[0]) if lrs is not None else None)
    out = []
    for t in range(steps(case)):
        grads = [tf.constant(case["grads"][n][t], dtype=dtype) for n in names]
        if lrs is not None:
            if kind == "tf1":
                lr_box[0] = float(lrs[t])
            else:
                opt.learning_rate = float(lrs[t])
        opt.apply_gradients(zip(grads, variables, strict=True))
        out.append({n: v.numpy() for n, v in zip(names, variables, strict=True)})
    return stack(out, names)
