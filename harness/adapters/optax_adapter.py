"""`optax.rmsprop`, jit-compiled update; x64 is enabled by the worker's environment."""

from __future__ import annotations

import numpy as np

from ._common import missing, stack, steps


def available() -> str | None:
    return missing("jax", "optax")


def run_case(case: dict) -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp
    import optax

    if case["dtype"] == "float64" and not jax.config.jax_enable_x64:
        raise RuntimeError("float64 needs JAX_ENABLE_X64=1 in the worker environment")
    dtype = jnp.dtype(case["dtype"])
    names = list(case["params0"])
    kwargs = dict(case["kwargs"])
    lrs = case.get("lrs")
    if lrs is not None:
        table = jnp.asarray(np.asarray(lrs, np.float64))
        kwargs["learning_rate"] = lambda count: table[count]  # optax counts from 0
    opt = optax.rmsprop(**kwargs)
    params = {n: jnp.asarray(case["params0"][n], dtype) for n in names}
    state = opt.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    out = []
    for t in range(steps(case)):
        grads = {n: jnp.asarray(case["grads"][n][t], dtype) for n in names}
        params, state = step(params, state, grads)
        out.append({n: np.asarray(params[n]) for n in names})
    return stack(out, names)
