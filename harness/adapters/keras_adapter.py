"""`keras.optimizers.RMSprop` (Keras 3); the backend is fixed by KERAS_BACKEND in the worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing, package_version

_BACKEND_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_SLOTS = {"_velocities": "nu", "_average_gradients": "mu", "_momentums": "trace"}


class Keras(Adapter):
    framework = "keras"
    dtypes = ("float16", "bfloat16", "float32", "float64")

    @property
    def backend(self) -> str:
        return os.environ.get("KERAS_BACKEND", "tensorflow")

    def available(self) -> str | None:
        if self.name.split(".", 1)[1] != self.backend:
            return f"{self.name} needs KERAS_BACKEND={self.name.split('.', 1)[1]} (the worker has {self.backend})"
        return missing("keras", _BACKEND_MODULE[self.backend])

    def devices(self) -> list[str]:
        if self.backend == "tensorflow":
            import tensorflow as tf

            gpu = bool(tf.config.list_physical_devices("GPU"))
        elif self.backend == "jax":
            import jax

            gpu = any(d.platform == "gpu" for d in jax.devices())
        else:
            import torch

            gpu = torch.cuda.is_available()
        return ["cpu", *(["gpu"] if gpu else [])]

    def device_name(self, device: str) -> str:
        return f"{self.backend} gpu:0" if device == "gpu" else cpu_name()

    def versions(self) -> dict[str, str | None]:
        return {"keras": package_version("keras"), self.backend: package_version(_BACKEND_MODULE[self.backend])}

    def run(self, task: Task) -> Iterator[Snapshot]:
        import keras

        names = list(task.shapes)
        with keras.device("gpu:0" if task.device == "gpu" else "cpu:0"):
            variables = [keras.Variable(a, dtype=task.dtype, name=n) for n, a in task.initial().items()]
            opt = keras.optimizers.RMSprop(**task.kwargs)
            record = set(task.record_steps)
            for t, grads in task.gradients():
                tensors = [keras.ops.convert_to_tensor(grads[n], dtype=task.dtype) for n in names]
                if task.lrs is not None:
                    opt.learning_rate = task.lr(t)
                opt.apply(tensors, variables)
                if t in record:
                    yield Snapshot(t, {n: _numpy(v) for n, v in zip(names, variables, strict=True)},
                                   _state(opt, names))

    def bench_variants(self, device: str) -> dict[str, str]:
        eager = {"eager": "optimizer.apply op by op, as a custom eager loop runs it"}
        if self.backend == "tensorflow":
            return {**eager, "tf.function": "optimizer.apply in a tf.function (graph, no XLA)",
                    "jit_compile": "optimizer.apply in tf.function(jit_compile=True) (XLA), as model.fit's "
                                   "default jit_compile='auto' does"}
        if self.backend == "jax":
            return {**eager, "jit+donate": "stateless_apply in jax.jit with the variables donated, as "
                                           "model.fit's JAX train step runs it"}
        return eager

    def bench(self, point: BenchPoint) -> Stepper:
        import keras

        params0, grads0 = point.arrays()
        names = list(params0)
        with keras.device("gpu:0" if point.device == "gpu" else "cpu:0"):
            variables = [keras.Variable(params0.pop(n), dtype=point.dtype, name=n) for n in names]
            grads = [keras.ops.convert_to_tensor(grads0.pop(n), dtype=point.dtype) for n in names]
            opt = keras.optimizers.RMSprop(**point.kwargs)
            opt.build(variables)
        sync, peak = lambda: None, lambda: None
        if self.backend == "tensorflow":
            import tensorflow as tf

            apply = lambda: opt.apply(grads, variables)  # noqa: E731
            if point.variant != "eager":
                apply = tf.function(apply, jit_compile=point.variant == "jit_compile")
            if point.device == "gpu":
                sync = lambda: variables[-1].value.numpy()  # noqa: E731 - a read waits for the queued steps
            return Stepper(apply, sync, peak)
        if self.backend == "jax":
            import jax

            sync = lambda: jax.block_until_ready([v.value for v in variables])  # noqa: E731
            if point.variant == "eager":
                return Stepper(lambda: opt.apply(grads, variables), sync, peak)
            step = jax.jit(opt.stateless_apply, donate_argnums=(0, 2))
            holder = [[v.value for v in opt.variables], [v.value for v in variables]]

            def one() -> None:
                holder[1], holder[0] = step(holder[0], grads, holder[1])

            return Stepper(one, lambda: jax.block_until_ready(holder), peak)
        import torch

        if point.device == "gpu":
            sync = torch.cuda.synchronize
        return Stepper(lambda: opt.apply(grads, variables), sync, peak)


def _numpy(v) -> object:
    import keras

    return as_float64(keras.ops.convert_to_numpy(keras.ops.cast(v.value, "float64")))


def _state(opt, names: list[str]) -> dict[str, dict]:
    out = {}
    for attr, kind in _SLOTS.items():
        slots = getattr(opt, attr, None) or []
        if slots:
            out[kind] = {n: _numpy(s) for n, s in zip(names, slots, strict=True)}
    return out


class KerasTensorflow(Keras):
    name = "keras.tensorflow"
    preset, family = "keras", "keras"
    env: ClassVar[dict[str, str]] = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


class KerasJax(Keras):
    name = "keras.jax"
    preset, family = "keras_jax", "keras"
    env: ClassVar[dict[str, str]] = {"KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


class KerasTorch(Keras):
    name = "keras.torch"
    preset, family = "keras_torch", "keras"
    env: ClassVar[dict[str, str]] = {"KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
