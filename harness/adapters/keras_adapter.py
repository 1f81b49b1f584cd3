"""`keras.optimizers.RMSprop` (Keras 3); the backend is fixed by KERAS_BACKEND in the worker."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ._common import cpu_name, missing, package_version
from .base import Adapter, Snapshot, Task, as_float64

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


class KerasJax(Keras):
    name = "keras.jax"


class KerasTorch(Keras):
    name = "keras.torch"
