"""docs/identify.md's Keras recipe on a real custom training loop, JAX backend (tests/test_identify.py runs it
in a subprocess with KERAS_BACKEND=jax)."""
import sys

import keras
import numpy as np

from harness.base.recordings import Recorder

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(4)])
optimizer = keras.optimizers.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, epsilon=1e-5)
optimizer.build(model.trainable_variables)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 4)).astype("float32")


def grads_of(values):
    import jax

    def loss(vs):
        out = model.stateless_call(vs, [], x)[0]
        return keras.ops.mean((out - y) ** 2)

    return jax.grad(loss)(values)


rec = Recorder({v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables})
for _ in range(48):
    grads = grads_of([v.value for v in model.trainable_variables])
    optimizer.apply(grads, model.trainable_variables)
    rec.step({v.path: keras.ops.convert_to_numpy(g) for v, g in zip(model.trainable_variables, grads, strict=True)},
             {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables},
             float(optimizer.learning_rate))
rec.save(sys.argv[1])
