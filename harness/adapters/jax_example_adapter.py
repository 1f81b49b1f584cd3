"""`jax.example_libraries.optimizers.rmsprop` / ``rmsprop_momentum``, the update jit-compiled as its users do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.adapters.base import BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.adapters.optax_adapter import Optax, device_arrays
from harness.base.host import missing


def _triple(kwargs: dict[str, Any]) -> tuple:
    from jax.example_libraries import optimizers

    kwargs = dict(kwargs)
    momentum = kwargs.pop("momentum", 0.0)
    if momentum:
        return optimizers.rmsprop_momentum(**kwargs, momentum=momentum)
    return optimizers.rmsprop(**kwargs)


class JaxExample(Optax):  # JAX's devices, versions and x64 handling
    name = "jax_example"
    framework = "jax"
    preset = family = "jax_example"

    def available(self) -> str | None:
        return missing("jax")

    def versions(self) -> dict[str, str]:
        import jax
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def run(self, task: Task) -> Iterator[Snapshot]:
        import jax
        import jax.numpy as jnp

        device = jax.devices("gpu" if task.device == "gpu" else "cpu")[0]
        dtype = jnp.dtype(task.dtype)
        kwargs = dict(task.kwargs)
        if task.lrs is not None:  # a schedule of the index passed to update: t - 1 for step t
            table = jax.device_put(jnp.asarray(task.lrs.astype(np.float64 if task.dtype == "float64" else
                                                               np.float32)), device)
            kwargs["step_size"] = lambda i: table[i]
        init, update, get_params = _triple(kwargs)
        state = init({n: jax.device_put(jnp.asarray(a, dtype), device) for n, a in task.initial().items()})
        step = jax.jit(update)
        record = set(task.record_steps)
        for t, grads in task.gradients():
            state = step(t - 1, {n: jax.device_put(jnp.asarray(g, dtype), device) for n, g in grads.items()}, state)
            if t in record:
                params = get_params(state)
                yield Snapshot(t, {n: as_float64(np.asarray(p, np.float64)) for n, p in params.items()}, {})

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"jit": "jax.jit(update): the update as the example libraries' users compile it"}

    def bench(self, point: BenchPoint) -> Stepper:
        import jax

        _, params, grads = device_arrays(point)
        init, update, _ = _triple(point.kwargs)
        step = jax.jit(update)
        holder = [init(params)]

        def one() -> None:
            holder[0] = step(0, grads, holder[0])

        return Stepper(one, lambda: jax.block_until_ready(holder))
