"""The adapter registry: names, where each adapter lives, its preset and its process environment.

Nothing here imports a framework. An adapter (see `base.Adapter`) is created
inside a worker process from ``target`` (``"module:Class"``); adapters with the
same module and environment share one worker process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import STATE_KINDS, Adapter, Snapshot, Task

__all__ = ["ADAPTERS", "STATE_KINDS", "Adapter", "AdapterInfo", "Snapshot", "Task", "resolve"]

# Conformance runs are single-threaded per worker: the frameworks otherwise fight over
# the cores, and elementwise results do not depend on the thread count.
_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


@dataclass(frozen=True)
class AdapterInfo:
    """Where an adapter lives, which preset interprets its arguments and the environment it needs."""

    name: str
    target: str  # "module:Class"
    preset: str
    family: str  # the key of a case's native arguments shared by related adapters ([case.args.<family>])
    env: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ("cpu", "gpu")  # where it can run at all; `devices = "auto"` picks from these

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def worker_key(self) -> tuple:
        """Adapters with equal keys run in one worker process."""
        return (self.module, tuple(sorted(self.env.items())))


def _info(name: str, target: str, preset: str, family: str, devices: tuple[str, ...] = ("cpu", "gpu"),
          **env: str) -> AdapterInfo:
    return AdapterInfo(name, target, preset, family, {**_ONE_THREAD, **env}, devices)


_T, _K, _TF = "harness.adapters.torch_adapter", "harness.adapters.keras_adapter", "harness.adapters.tf_adapter"
ADAPTERS: dict[str, AdapterInfo] = {
    a.name: a
    for a in (
        _info("torch.single", f"{_T}:Single", "torch", "torch"),
        _info("torch.foreach", f"{_T}:Foreach", "torch", "torch"),
        _info("torch.capturable", f"{_T}:Capturable", "torch", "torch", ("gpu",)),
        _info("keras.tensorflow", f"{_K}:KerasTensorflow", "keras", "keras", KERAS_BACKEND="tensorflow"),
        _info("keras.jax", f"{_K}:KerasJax", "keras_jax", "keras", KERAS_BACKEND="jax", JAX_ENABLE_X64="1"),
        _info("keras.torch", f"{_K}:KerasTorch", "keras_torch", "keras", KERAS_BACKEND="torch"),
        _info("tf_keras", f"{_TF}:TFKeras", "tf_keras", "tf_keras"),
        _info("tf_keras_legacy", f"{_TF}:TFKerasLegacy", "tf_keras_legacy", "tf_keras_legacy"),
        _info("tf1", f"{_TF}:TF1", "tf1", "tf1"),
        _info("tf1.function", f"{_TF}:TF1Function", "tf1", "tf1"),
        _info("tf.raw", f"{_TF}:TFRaw", "tf_raw", "tf_raw"),
        _info("optax", "harness.adapters.optax_adapter:Optax", "optax", "optax", JAX_ENABLE_X64="1"),
    )
}


def resolve(patterns: list[str], known: list[str] | None = None) -> list[str]:
    """Adapter names matching ``patterns``: a full name (``torch.single``) or a family prefix
    (``torch`` -> ``torch.single``, ``torch.foreach``, ...). `KeyError` names an unknown one."""
    known = list(ADAPTERS) if known is None else known
    out: list[str] = []
    for pattern in patterns:
        hits = [a for a in known if a == pattern or a.startswith(pattern + ".")]
        if not hits:
            raise KeyError(f"unknown adapter {pattern!r}; known: {', '.join(known)}")
        out += [h for h in hits if h not in out]
    return out
