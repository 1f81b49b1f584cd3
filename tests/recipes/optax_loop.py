"""docs/identify.md's optax recipe on a real training loop (tests/test_identify.py runs it in a subprocess)."""
import sys

import jax
import jax.numpy as jnp
import optax

from harness.base.recordings import Recorder

key = jax.random.PRNGKey(0)
k1, k2, k3 = jax.random.split(key, 3)
params = {"w": jax.random.normal(k1, (8, 4)) * 0.3, "b": jnp.zeros(4)}
x, y = jax.random.normal(k2, (64, 8)), jax.random.normal(k3, (64, 4))
schedule = optax.piecewise_constant_schedule(0.01, {20: 0.5})
opt = optax.rmsprop(schedule, decay=0.95, eps=1e-6, momentum=0.9)
state = opt.init(params)


def loss(p):
    return jnp.mean((jnp.tanh(x @ p["w"] + p["b"]) - y) ** 2)


rec = Recorder(params)
for step in range(48):
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    rec.step(grads, params, float(schedule(step)))
rec.save(sys.argv[1])
