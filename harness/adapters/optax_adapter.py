"""`optax.rmsprop` with a jit-compiled update; x64 is enabled by the worker's environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing


def _state_fields(state: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Collect ``nu``/``mu``/``trace`` from optax's chain state (tuples of NamedTuples)."""
    fields = getattr(state, "_fields", None)
    if fields is not None:
        for f in fields:
            if f in ("nu", "mu", "trace"):
                out[f] = getattr(state, f)
            else:
                _state_fields(getattr(state, f), out)
    elif isinstance(state, tuple | list):
        for s in state:
            _state_fields(s, out)
    return out


def device_arrays(point: BenchPoint) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A benchmark's JAX device and its parameters and gradients there, in the point's dtype (the NumPy
    originals released one by one, so the host never holds two copies)."""
    import jax
    import jax.numpy as jnp

    device = jax.devices("gpu" if point.device == "gpu" else "cpu")[0]
    dtype = jnp.dtype(point.dtype)
    params0, grads0 = point.arrays()
    params = {n: jax.device_put(jnp.asarray(params0.pop(n), dtype), device) for n in list(params0)}
    grads = {n: jax.device_put(jnp.asarray(grads0.pop(n), dtype), device) for n in list(grads0)}
    return device, params, grads


class Optax(Adapter):
    name = "optax"
    framework = "optax"
    preset = family = "optax"
    env: ClassVar[dict[str, str]] = {"JAX_ENABLE_X64": "1"}
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def available(self) -> str | None:
        return missing("jax", "optax")

    def devices(self) -> list[str]:
        import jax

        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        return ["cpu", *(["gpu"] if gpus else [])]

    def device_name(self, device: str) -> str:
        import jax

        return jax.devices("gpu")[0].device_kind if device == "gpu" else cpu_name()

    def versions(self) -> dict[str, str]:
        import jax
        import jaxlib
        import optax

        return {"optax": optax.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def unsupported(self, task: Task) -> str | None:
        import jax

        if task.dtype == "float64" and not jax.config.jax_enable_x64:
            return "unsupported: dtype=float64 (the worker was started without JAX_ENABLE_X64=1)"
        return super().unsupported(task)

    def run(self, task: Task) -> Iterator[Snapshot]:
        import jax
        import jax.numpy as jnp
        import optax

        device = jax.devices("gpu" if task.device == "gpu" else "cpu")[0]
        dtype = jnp.dtype(task.dtype)
        kwargs = dict(task.kwargs)
        if task.lrs is not None:
            # a float32 table for float32 and narrower runs, as a float32 training script has:
            # a float64 lr would promote the updates (and optax's trace) to float64
            table_dtype = np.float64 if task.dtype == "float64" else np.float32
            table = jax.device_put(jnp.asarray(task.lrs.astype(table_dtype)), device)
            kwargs["learning_rate"] = lambda count: table[count]  # optax counts from 0
        opt = optax.rmsprop(**kwargs)
        params = {n: jax.device_put(jnp.asarray(a, dtype), device) for n, a in task.initial().items()}
        state = opt.init(params)

        @jax.jit
        def step(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        record = set(task.record_steps)
        for t, grads in task.gradients():
            grads = {n: jax.device_put(jnp.asarray(g, dtype), device) for n, g in grads.items()}
            params, state = step(params, state, grads)
            if t in record:
                fields = _state_fields(state, {})
                out = {k: {n: as_float64(np.asarray(v[n], np.float64)) for n in v} for k, v in fields.items()}
                if "trace" in out:  # optax's trace is the negated, lr-scaled update
                    out["trace"] = {n: -v for n, v in out["trace"].items()}
                yield Snapshot(t, {n: as_float64(np.asarray(p, np.float64)) for n, p in params.items()}, out)

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"jit": "jax.jit(update + apply_updates): fresh output buffers every step",
                "jit+donate": "the same with donate_argnums=(params, state): updated in place, as a training "
                              "loop should"}

    def bench(self, point: BenchPoint) -> Stepper:
        import jax
        import optax

        device, params, grads = device_arrays(point)
        opt = optax.rmsprop(**point.kwargs)

        def update(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        step = jax.jit(update, donate_argnums=(0, 1) if point.variant == "jit+donate" else ())
        holder = [params, opt.init(params)]

        def one() -> None:
            holder[0], holder[1] = step(holder[0], holder[1], grads)

        def peak() -> int | None:
            stats = device.memory_stats() if point.device == "gpu" else None
            return None if not stats else int(stats.get("peak_bytes_in_use", 0))

        return Stepper(one, lambda: jax.block_until_ready(holder), peak)
