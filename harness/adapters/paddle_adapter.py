"""PaddlePaddle `paddle.optimizer.RMSProp` in dynamic-graph mode (the CPU wheel; a CUDA build adds the GPU)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing

_STATE = {"mean_square": "nu", "mean_grad": "mu", "momentum": "trace"}


class Paddle(Adapter):
    name = "paddle"
    framework = "paddlepaddle"
    preset = family = "paddle"
    env: ClassVar[dict[str, str]] = {"GLOG_minloglevel": "2", "FLAGS_use_onednn": "0"}
    dtypes = ("float32", "float64")

    def available(self) -> str | None:
        return missing("paddle")

    def devices(self) -> list[str]:
        import paddle

        return ["cpu", *(["gpu"] if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count()
                         else [])]

    def device_name(self, device: str) -> str:
        import paddle

        return paddle.device.cuda.get_device_name(0) if device == "gpu" else cpu_name()

    def _build(self, arrays: dict[str, np.ndarray], dtype: str, device: str, kwargs: dict[str, Any]):
        import paddle

        paddle.set_device("gpu:0" if device == "gpu" else "cpu")
        params = [paddle.create_parameter(shape=list(a.shape), dtype=dtype,
                                          default_initializer=paddle.nn.initializer.Assign(np.asarray(a, dtype)))
                  for a in arrays.values()]
        return params, paddle.optimizer.RMSProp(parameters=params, **kwargs)

    def run(self, task: Task) -> Iterator[Snapshot]:
        import paddle

        names = list(task.shapes)
        params, opt = self._build(task.initial(), task.dtype, task.device, dict(task.kwargs))
        record = set(task.record_steps)
        for t, grads in task.gradients():
            for p, n in zip(params, names, strict=True):  # d(sum(p*g))/dp = g: the gradient, exactly
                (p * paddle.to_tensor(np.asarray(grads[n], task.dtype))).sum().backward()
            if task.lrs is not None:
                opt.set_lr(float(task.lr(t)))
            opt.step()
            opt.clear_grad()
            if t in record:
                state: dict[str, dict] = {}
                for p, n in zip(params, names, strict=True):
                    for key, kind in _STATE.items():
                        acc = opt._accumulators.get(key, {}).get(p.name)
                        if acc is not None:
                            state.setdefault(kind, {})[n] = as_float64(acc.numpy().astype(np.float64))
                yield Snapshot(t, {n: as_float64(p.numpy().astype(np.float64)) for n, p in zip(names, params,
                                                                                              strict=True)}, state)

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"eager": "opt.step() in dynamic-graph mode, gradients set by backward once"}

    def bench(self, point: BenchPoint) -> Stepper:
        import paddle

        params0, grads0 = point.arrays()
        params, opt = self._build(params0, point.dtype, point.device, dict(point.kwargs))
        for p, g in zip(params, grads0.values(), strict=True):
            (p * paddle.to_tensor(np.asarray(g, point.dtype))).sum().backward()
        return Stepper(opt.step)
