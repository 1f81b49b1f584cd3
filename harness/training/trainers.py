"""One declarative record per framework that trains the workloads natively: its model and optimizer.

A `Trainer` names the adapter whose optimizer it uses (the adapter registry gives the preset, its
semantics, and the worker environment: Keras' backend, x64, one thread) and the module whose
``Model`` builds the workloads in that framework. Generic code (`harness.training.plan`, the
worker) loops over these records; adding a framework that trains is one line here when its model
module exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.adapters import ADAPTERS
from reference.errors import InputKeyError

_MODELS = "harness.training.frameworks"


@dataclass(frozen=True, kw_only=True)
class Trainer:
    name: str  # what the tables call it: "torch", "keras.jax", ...
    adapter: str  # the adapter (registry name) whose optimizer steps the model
    model: str  # "module:Class" of the native model
    modules: tuple[str, ...]  # what must import for it to run (a missing one: skipped rows with the reason)
    env: dict[str, str] = field(default_factory=dict)  # added to the adapter's environment
    default: bool = True  # trained unless the user names trainers

    @property
    def preset(self) -> str:
        return ADAPTERS[self.adapter].preset

    @property
    def target(self) -> str:
        return ADAPTERS[self.adapter].target

    def environment(self) -> dict[str, str]:
        return {**ADAPTERS[self.adapter].env, **self.env}


_TORCH, _KERAS, _JAX = f"{_MODELS}.torch_model:Model", f"{_MODELS}.keras_model:Model", f"{_MODELS}.jax_model:Model"
_TF_KERAS = f"{_MODELS}.keras_model:TFKerasModel"
_TF2 = {"RMSPROP_HARNESS_TRAIN_FLAVOR": "tf_keras", "TF_CPP_MIN_LOG_LEVEL": "2"}

TRAINERS: dict[str, Trainer] = {t.name: t for t in (
    Trainer(name="torch", adapter="torch.single", model=_TORCH, modules=("torch",)),
    Trainer(name="keras.tensorflow", adapter="keras.tensorflow", model=_KERAS, modules=("keras", "tensorflow")),
    Trainer(name="keras.jax", adapter="keras.jax", model=_KERAS, modules=("keras", "jax")),
    Trainer(name="keras.torch", adapter="keras.torch", model=_KERAS, modules=("keras", "torch")),
    Trainer(name="optax", adapter="optax", model=_JAX, modules=("jax", "optax")),
    Trainer(name="tf_keras", adapter="tf_keras", model=_TF_KERAS, modules=("tf_keras", "tensorflow"), env=_TF2),
    Trainer(name="tf_keras_legacy", adapter="tf_keras_legacy", model=_TF_KERAS, modules=("tf_keras", "tensorflow"),
            env=_TF2, default=False),
    Trainer(name="tf1", adapter="tf1", model=_TF_KERAS, modules=("tf_keras", "tensorflow"), env=_TF2),
    Trainer(name="jax_example", adapter="jax_example", model=_JAX, modules=("jax",), default=False),
    Trainer(name="timm", adapter="timm.single", model=_TORCH, modules=("torch", "timm"), default=False),
    Trainer(name="sb3", adapter="sb3", model=_TORCH, modules=("torch", "stable_baselines3"), default=False),
    Trainer(name="pfrl", adapter="pfrl", model=_TORCH, modules=("torch", "pfrl"), default=False),
)}


def get(name: str) -> Trainer:
    if name not in TRAINERS:
        raise InputKeyError(f"unknown framework {name!r} for training; known: {', '.join(TRAINERS)}")
    return TRAINERS[name]


def defaults() -> list[str]:
    return [t.name for t in TRAINERS.values() if t.default]


__all__ = ["TRAINERS", "Trainer", "defaults", "get"]
