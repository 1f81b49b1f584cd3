"""Adapters: one module per framework; the framework is imported only inside its module.

An adapter module exposes

* ``available() -> str | None``: ``None`` when it can run, else the reason it cannot;
* ``run_case(case) -> dict[str, np.ndarray]``: drive the real optimizer over
  ``case["grads"]`` (a dict name -> array ``(T, *shape)``) from ``case["params0"]``
  with the framework-native ``case["kwargs"]`` and return the parameters after
  every step as float64 arrays ``(T, *shape)``. ``case["dtype"]`` is the run dtype,
  ``case.get("lrs")`` an optional per-step learning rate.

Adapters run inside `harness.worker` subprocesses (one per framework/backend),
never in the caller's process.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AdapterInfo:
    """Where an adapter lives and the process environment it needs."""

    name: str
    module: str
    preset: str
    env: dict[str, str] = field(default_factory=dict)


ADAPTERS: dict[str, AdapterInfo] = {
    a.name: a
    for a in (
        AdapterInfo("torch", "harness.adapters.torch_adapter", "torch"),
        AdapterInfo("keras.tensorflow", "harness.adapters.keras_adapter", "keras",
                    {"KERAS_BACKEND": "tensorflow"}),
        AdapterInfo("keras.jax", "harness.adapters.keras_adapter", "keras_jax",
                    {"KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1"}),
        AdapterInfo("keras.torch", "harness.adapters.keras_adapter", "keras_torch",
                    {"KERAS_BACKEND": "torch"}),
        AdapterInfo("tf_keras", "harness.adapters.tf_adapter", "tf_keras"),
        AdapterInfo("tf_keras.legacy", "harness.adapters.tf_adapter", "tf_keras_legacy"),
        AdapterInfo("tf1", "harness.adapters.tf_adapter", "tf1"),
        AdapterInfo("optax", "harness.adapters.optax_adapter", "optax", {"JAX_ENABLE_X64": "1"}),
    )
}
