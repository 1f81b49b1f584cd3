"""Framework presets: each framework's own constructor arguments -> `RMSpropSpec`.

A preset takes exactly the arguments (names and defaults) of the framework's
optimizer constructor, minus the parameter list, so a user types what is already
in their training script::

    presets.torch(lr=0.01, alpha=0.99, eps=1e-8)      # torch.optim.RMSprop
    presets.keras(learning_rate=1e-3, rho=0.9)         # keras.optimizers.RMSprop
    presets.optax(1e-3, decay=0.9, eps_in_sqrt=False)  # optax.rmsprop

An unknown argument raises `TypeError`; a value the framework would reject (or
that no RMSprop can run: negative lr, decay outside [0, 1], negative eps) raises
`ValueError`. Whatever a framework silently rewrites or ignores is recorded in
``spec.notes``. The semantics come from `../shared/docs/rmsprop-variants.md`.

Each preset lives with the rest of what the harness knows about its implementation, in one
record per implementation (`reference.implementations`); this module is the view by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import implementations
from .implementations.keras3 import keras, keras_jax, keras_torch
from .implementations.knobs import spec
from .implementations.optax_alias import optax
from .implementations.pytorch import torch
from .implementations.tf1 import tf1, tf_raw
from .implementations.tfkeras import tf_keras, tf_keras_legacy
from .spec import RMSpropSpec


class _ByName(Mapping):
    """A read-only view of every implementation record's ``attr``, by name, in listing order."""

    def __init__(self, attr: str, default: Any = None):
        self.attr, self.default = attr, default

    def __getitem__(self, name: str) -> Any:
        if name not in implementations.names():
            raise KeyError(name)
        return getattr(implementations.get(name), self.attr)

    def __iter__(self) -> Iterator[str]:
        return iter(implementations.names())

    def __len__(self) -> int:
        return len(implementations.names())


#: Every preset by name, in the order `explain` shows them.
PRESETS: Mapping[str, Callable[..., RMSpropSpec]] = _ByName("preset")

#: Arguments a preset needs when the framework has no default (a required lr); empty for the others.
REQUIRED_DEFAULTS: Mapping[str, Mapping[str, Any]] = _ByName("required")


def get(name: str) -> Callable[..., RMSpropSpec]:
    """The preset called ``name``; `InputKeyError` naming the known presets otherwise."""
    return implementations.get(name).preset


def defaults(name: str) -> RMSpropSpec:
    """The preset with the framework's defaults (lr 1e-3 where the framework requires one)."""
    return implementations.get(name).defaults()


__all__ = ["PRESETS", "REQUIRED_DEFAULTS", "defaults", "get", "keras", "keras_jax", "keras_torch", "optax", "spec",
           "tf1", "tf_keras", "tf_keras_legacy", "tf_raw", "torch"]
