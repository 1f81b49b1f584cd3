"""The workloads as Keras ``Sequential`` models: Keras 3 on its TensorFlow, JAX and torch backends
(KERAS_BACKEND, set by the worker's environment), and tf_keras (Keras 2) for the TensorFlow-side
optimizers: tf_keras' own, its legacy one and TF1's ``RMSPropOptimizer`` (through their adapters)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.training.workloads import QUADRATIC_CURVATURE, Workload


def determinism() -> None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow" or os.environ.get("RMSPROP_HARNESS_TRAIN_FLAVOR") == "tf_keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        torch.use_deterministic_algorithms(True)
    # JAX: one thread and deterministic CPU kernels through XLA_FLAGS in the trainer's environment


class Model:
    flavor = "keras"  # Keras 3

    def __init__(self, workload: Workload, dtype: str, params: dict[str, np.ndarray]):
        self.workload, self.dtype = workload, dtype
        keras = self.keras = self._module()
        (keras.config if hasattr(keras, "config") and hasattr(keras.config, "set_floatx") else keras.backend
         ).set_floatx(dtype)  # every layer's weights in the run dtype
        layers = keras.layers
        kind = workload.model
        d = {"dtype": dtype}  # on every layer: Keras 3's global dtype policy is fixed at its first use
        if kind == "linear":
            body = [keras.Input((3,), dtype=dtype), layers.Dense(2, **d)]
        elif kind == "quadratic":
            body = [keras.Input((1,), dtype=dtype), _point_layer(keras, self._tensor)(**d)]
        elif kind == "mlp":
            body = [keras.Input((64,), dtype=dtype), layers.Dense(32, activation="tanh", **d), layers.Dense(10, **d)]
        else:
            body = [keras.Input((8, 8, 1), dtype=dtype), layers.Conv2D(8, 3, activation="relu", **d),
                    layers.Flatten(**d), layers.Dense(10, **d)]
        self.model = keras.Sequential(body)
        self.variables = list(self.model.trainable_variables)  # layer by layer, kernel then bias: canonical
        losses = d if self.flavor == "keras" else {}  # tf_keras' losses compute in the inputs' dtype
        if workload.loss == "xent":
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, **losses)
        elif workload.loss == "mse":
            self.loss_fn = keras.losses.MeanSquaredError(**losses)
        else:
            self.loss_fn = lambda y, point: self._quadratic(np.asarray(QUADRATIC_CURVATURE, dtype), point)
        self._grad = None
        self.set(params)

    def _module(self) -> Any:
        import keras

        return keras

    def _quadratic(self, curvature: np.ndarray, point: Any) -> Any:
        ops = self.keras.ops
        return 0.5 * ops.sum(ops.multiply(ops.convert_to_tensor(curvature), ops.multiply(point, point)))

    def _tensor(self, x: Any) -> Any:
        ops = self.keras.ops
        return ops.add(x, ops.zeros((2,), self.dtype))  # an op on the variable: differentiable on every backend

    def set(self, params: dict[str, np.ndarray]) -> None:
        for v, a in zip(self.variables, params.values(), strict=True):
            v.assign(np.asarray(a, self.dtype))

    def _numpy(self, x: Any) -> np.ndarray:
        return np.asarray(self.keras.ops.convert_to_numpy(x), np.float64)

    def get(self) -> dict[str, np.ndarray]:
        return {n: self._numpy(v.value) for n, v in zip(self.workload.shapes, self.variables, strict=True)}

    def _inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return np.asarray(x, self.dtype), (y if self.workload.classifier else np.asarray(y, self.dtype))

    def _gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, list]:
        """The loss and the backend's gradient tensors at the current parameters."""
        backend = self.keras.backend.backend()
        x, y = self._inputs(x, y)
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = self.loss_fn(y, self.model(x, training=True))
            return loss, tape.gradient(loss, self.variables)
        if backend == "jax":
            if self._grad is None:
                import jax

                def compute(trainable, non_trainable, x, y):
                    out, _ = self.model.stateless_call(trainable, non_trainable, x, training=True)
                    return self.loss_fn(y, out)

                self._grad = jax.jit(jax.value_and_grad(compute))
            trainable = [v.value for v in self.variables]
            non_trainable = [v.value for v in self.model.non_trainable_variables]
            return self._grad(trainable, non_trainable, x, y)
        for v in self.variables:
            v.value.grad = None
        loss = self.loss_fn(y, self.model(x, training=True))
        loss.backward()
        return loss.detach(), [v.value.grad for v in self.variables]

    def loss_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        loss, grads = self._gradients(x, y)
        return float(self._numpy(loss)), {n: self._numpy(g) for n, g in zip(self.workload.shapes, grads, strict=True)}

    def _make(self, target: str, args: dict[str, Any]) -> tuple[Any, Callable[[Any, list], None]]:
        opt = self.keras.optimizers.RMSprop(**args)
        return opt, lambda opt, grads: opt.apply(grads, self.variables)

    def optimizer(self, target: str, args: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
        opt, apply = self._make(target, dict(args))

        def step(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
            loss, grads = self._gradients(x, y)
            norm = math.sqrt(sum(float(np.sum(self._numpy(g) ** 2)) for g in grads))
            apply(opt, grads)
            return float(self._numpy(loss)), norm

        return step

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        x, y = self._inputs(x, y)
        out = self.model(x, training=False)
        loss = float(self._numpy(self.loss_fn(y, out)))
        if not self.workload.classifier:
            return loss, math.nan
        return loss, float(np.mean(self._numpy(out).argmax(1) == y))


class TFKerasModel(Model):
    """The same models in tf_keras (Keras 2, TensorFlow only); the optimizer is the adapter's
    (``optimizer(kwargs, scheduled)`` and ``step(opt, grads, variables)``)."""

    flavor = "tf_keras"

    def _module(self) -> Any:
        import tf_keras

        return tf_keras

    def _quadratic(self, curvature: np.ndarray, point: Any) -> Any:
        import tensorflow as tf

        return 0.5 * tf.reduce_sum(tf.constant(curvature) * point * point)

    def _tensor(self, x: Any) -> Any:
        import tensorflow as tf

        return tf.identity(x)

    def _numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float64)

    def get(self) -> dict[str, np.ndarray]:
        return {n: self._numpy(v) for n, v in zip(self.workload.shapes, self.variables, strict=True)}

    def _gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, list]:
        import tensorflow as tf

        x, y = self._inputs(x, y)
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model(x, training=True))
        return loss, tape.gradient(loss, self.variables)

    def _make(self, target: str, args: dict[str, Any]) -> tuple[Any, Callable[[Any, list], None]]:
        from harness.process.loading import instantiate

        adapter = instantiate(target)
        opt = adapter.optimizer(args, False)
        return opt, lambda opt, grads: adapter.step(opt, grads, self.variables)


def _point_layer(keras: Any, tensor: Any) -> type:
    """The quadratic's one weight as a layer whose output is the point itself."""

    class Point(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.point = self.add_weight(shape=(2,), initializer="zeros", name="point")

        def compute_output_shape(self, input_shape: Any) -> tuple[int, ...]:
            return (2,)

        def call(self, x: Any) -> Any:
            return tensor(self.point)

    return Point
