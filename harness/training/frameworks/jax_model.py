"""The workloads as pure JAX functions of a parameter dict (the canonical layout is JAX's own); the
optimizer is `optax.rmsprop` or `jax.example_libraries.optimizers.rmsprop`, each step jit-compiled as
their users write it. x64 and one deterministic CPU thread come from the trainer's environment."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.training.workloads import QUADRATIC_CURVATURE, Workload


def determinism() -> None:
    """Nothing to call: XLA_FLAGS in the trainer's environment pin the CPU to one thread."""


class Model:
    def __init__(self, workload: Workload, dtype: str, params: dict[str, np.ndarray]):
        import jax
        import jax.numpy as jnp
        import optax

        self.workload, self.dtype = workload, jnp.dtype(dtype)
        kind = workload.model
        curvature = jnp.asarray(QUADRATIC_CURVATURE, self.dtype)

        def forward(p: dict, x: Any) -> Any:
            if kind == "linear":
                return x @ p["kernel"] + p["bias"]
            if kind == "mlp":
                h = jnp.tanh(x @ p["hidden.kernel"] + p["hidden.bias"])
                return h @ p["out.kernel"] + p["out.bias"]
            h = jax.lax.conv_general_dilated(x, p["conv.kernel"], (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = jax.nn.relu(h + p["conv.bias"])
            return h.reshape(h.shape[0], -1) @ p["out.kernel"] + p["out.bias"]

        def loss(p: dict, x: Any, y: Any) -> Any:
            if kind == "quadratic":
                return 0.5 * jnp.sum(curvature * p["point"] * p["point"])
            out = forward(p, x)
            if workload.loss == "xent":
                return optax.losses.softmax_cross_entropy_with_integer_labels(out, y).mean()
            return jnp.mean((out - y) ** 2)

        self.forward, self.loss = jax.jit(forward), jax.jit(loss)
        self.value_and_grad = jax.jit(jax.value_and_grad(loss))
        self.set(params)

    def set(self, params: dict[str, np.ndarray]) -> None:
        import jax.numpy as jnp

        self.params = {n: jnp.asarray(np.asarray(a, self.dtype)) for n, a in params.items()}

    def get(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(self.params[n], np.float64) for n in self.workload.shapes}  # JAX sorts dict keys

    def _inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return np.asarray(x, self.dtype), (y if self.workload.classifier else np.asarray(y, self.dtype))

    def loss_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        loss, grads = self.value_and_grad(self.params, *self._inputs(x, y))
        return float(loss), {n: np.asarray(grads[n], np.float64) for n in self.workload.shapes}

    def optimizer(self, target: str, args: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
        import jax
        import optax

        if target.endswith(":JaxExample"):
            from harness.adapters.jax_example_adapter import _triple

            init, update, get_params = _triple(dict(args))
            holder = [init(self.params), 0]

            @jax.jit
            def example_step(i, state, x, y):
                loss, grads = jax.value_and_grad(self.loss)(get_params(state), x, y)
                return update(i, grads, state), loss, optax.global_norm(grads)

            def step(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
                holder[0], loss, norm = example_step(holder[1], holder[0], *self._inputs(x, y))
                holder[1] += 1
                self.params = get_params(holder[0])
                return float(loss), float(norm)

            return step
        opt = optax.rmsprop(**args)
        state = [opt.init(self.params)]

        @jax.jit
        def optax_step(params, opt_state, x, y):
            loss, grads = jax.value_and_grad(self.loss)(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss, optax.global_norm(grads)

        def step(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
            self.params, state[0], loss, norm = optax_step(self.params, state[0], *self._inputs(x, y))
            return float(loss), float(norm)

        return step

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        x, y = self._inputs(x, y)
        loss = float(self.loss(self.params, x, y))
        if not self.workload.classifier:
            return loss, math.nan
        return loss, float(np.mean(np.asarray(self.forward(self.params, x)).argmax(1) == y))
