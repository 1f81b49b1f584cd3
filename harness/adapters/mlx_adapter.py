"""MLX `mlx.optimizers.RMSprop` on MLX's CPU device (``mlx[cpu]`` on Linux; Metal on Apple silicon)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing


def _array(a: np.ndarray, dtype: Any) -> Any:
    """An MLX array of ``a``'s values in ``dtype`` (exact: ``a`` holds values of that dtype). ``mx.array`` of a
    float64 NumPy array is float32 unless told otherwise, and it does not read ml_dtypes' bfloat16."""
    import mlx.core as mx

    if dtype == mx.float64:
        return mx.array(np.asarray(a, np.float64), dtype=mx.float64)
    return mx.array(np.asarray(a, np.float32), dtype=mx.float32).astype(dtype)


class MLX(Adapter):
    name = "mlx"
    framework = "mlx"
    preset = family = "mlx"
    device_kinds = ("cpu",)  # MLX's GPU is Apple's Metal, never a CUDA GPU
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def available(self) -> str | None:
        return missing("mlx")

    def device_name(self, device: str) -> str:
        return cpu_name()

    def run(self, task: Task) -> Iterator[Snapshot]:
        import mlx.core as mx
        import mlx.optimizers as optim

        mx.set_default_device(mx.cpu)
        dtype = getattr(mx, task.dtype)
        kwargs: dict[str, Any] = dict(task.kwargs)
        if task.lrs is not None:  # MLX calls a schedule with its step count before incrementing it: 0 first
            table = mx.array(task.lrs.astype(np.float32))
            kwargs["learning_rate"] = lambda step: table[step]
        opt = optim.RMSprop(**kwargs)
        params = {n: _array(a, dtype) for n, a in task.initial().items()}
        record = set(task.record_steps)
        for t, grads in task.gradients():
            params = opt.apply_gradients({n: _array(g, dtype) for n, g in grads.items()}, params)
            mx.eval(params, opt.state)
            if t in record:
                nu = {n: as_float64(np.array(opt.state[n]["v"].astype(mx.float64))) for n in params}
                yield Snapshot(t, {n: as_float64(np.array(p.astype(mx.float64))) for n, p in params.items()},
                               {"nu": nu})

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"eager": "opt.apply_gradients + mx.eval per step (MLX's lazy graph evaluated each step)"}

    def bench(self, point: BenchPoint) -> Stepper:
        import mlx.core as mx
        import mlx.optimizers as optim

        mx.set_default_device(mx.cpu)
        dtype = getattr(mx, point.dtype)
        params0, grads0 = point.arrays()
        params = {n: _array(params0.pop(n), dtype) for n in list(params0)}
        grads = {n: _array(grads0.pop(n), dtype) for n in list(grads0)}
        opt = optim.RMSprop(**point.kwargs)
        holder = [params]

        def one() -> None:
            holder[0] = opt.apply_gradients(grads, holder[0])
            mx.eval(holder[0], opt.state)

        return Stepper(one)
