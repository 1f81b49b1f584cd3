"""One declarative record per RMSprop implementation; everything else loops over the records.

Like PyTorch's ``OptimizerInfo`` (``torch/testing/_internal/common_optimizers.py``): a module in
this package defines an implementation's *preset* (its constructor's own arguments and defaults
-> `RMSpropSpec`, checked the way the framework checks them) and lists it in ``RECORDS`` as an
`Implementation`: its name, how its arguments are named and printed, which neutral knob each
argument sets, whether parity compares it by default, which packages' versions a run reports and
which adapters drive it. The presets, translation, parity, suites' matrices, ``env.json``, the
command line's help and the adapter registry (`harness.adapters`) all read these records, so
adding an implementation is its module here, its adapter module, and a line in a suite.

Modules are found by scanning this package (a module whose name starts with ``_`` is a helper).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputKeyError
from ..spec import RMSpropSpec

#: The framework-neutral knobs a user states once (parity, suite matrices, bench settings).
KNOBS = ("lr", "decay", "eps", "momentum", "centered", "weight_decay")


@dataclass(frozen=True, kw_only=True)
class Implementation:
    """What the harness knows about one implementation (see the module docstring)."""

    name: str  # the preset's name: "torch", "keras_jax", ...
    preset: Callable[..., RMSpropSpec]  # its own constructor arguments -> the semantics
    title: str  # what users call it: "torch.optim.RMSprop"
    call: str  # how a call is written, "{}" for the arguments: "torch.optim.RMSprop(params, {})"
    native: Callable[[RMSpropSpec], dict[str, Any]]  # semantics -> its arguments (checked by native_args)
    knobs: Mapping[str, str]  # neutral knob -> the argument that sets it (absent: it has none)
    knob_values: Mapping[str, Callable[[Any], dict[str, Any]]] = field(default_factory=dict)  # special mappings
    required: Mapping[str, Any] = field(default_factory=dict)  # arguments without a default (lr for TF1, optax)
    parity: bool = True  # compared by `rmsprop-harness parity` unless the user names presets
    packages: tuple[str, ...] = ()  # distributions whose versions every env.json reports
    adapters: tuple[str, ...] = ()  # "module:Class" of the adapters that drive the real implementation
    rewrites: tuple[str, ...] = ()  # what it silently rewrites or ignores (the preset records each in notes)
    rank: int = 100  # order in listings (explain, help)
    call_text: Callable[[dict[str, Any]], str] | None = None  # when "{}" in `call` is not enough
    #: why there is no adapter (the install error, quoted): the preset still serves translate, parity and explain
    reference_only: str = ""
    #: argument sets the framework-vs-reference tests drive through every adapter of the record (tests/configs.py)
    examples: tuple[Mapping[str, Any], ...] = ()

    def knob_args(self, knob: str, value: Any) -> dict[str, Any] | None:
        """The arguments that set neutral ``knob`` to ``value``; None when the implementation has none."""
        if knob in self.knob_values:
            return self.knob_values[knob](value)
        name = self.knobs.get(knob)
        return None if name is None else {name: value}

    def write_call(self, args: Mapping[str, Any]) -> str:
        if self.call_text is not None:
            return self.call_text(dict(args))
        text = self.call.format(", ".join(f"{k}={v!r}" for k, v in args.items()))
        return text.replace(", )", ")")  # "f(params, {})" with no argument to show: "f(params)"

    def defaults(self) -> RMSpropSpec:
        """The preset with the framework's defaults (its required arguments filled in)."""
        return self.preset(**self.required)


_RECORDS: dict[str, Implementation] | None = None
_EXTRA: list[Implementation] = []  # registered at run time (tests, plugins)


def _load() -> dict[str, Implementation]:
    global _RECORDS
    if _RECORDS is None:
        found: list[Implementation] = []
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                found += list(getattr(importlib.import_module(f"{__name__}.{module.name}"), "RECORDS", ()))
        _RECORDS = {r.name: r for r in sorted(found, key=lambda r: (r.rank, r.name))}
    return _RECORDS


def all_records() -> list[Implementation]:
    """Every implementation, in listing order."""
    return [*_load().values(), *_EXTRA]


def names() -> list[str]:
    return [r.name for r in all_records()]


def get(name: str) -> Implementation:
    """The record called ``name``; `InputKeyError` naming the known ones otherwise."""
    for record in all_records():
        if record.name == name:
            return record
    raise InputKeyError(f"unknown preset {name!r}; known: {', '.join(names())}")


def register(record: Implementation) -> None:
    """Add an implementation at run time (a plugin, a test); every consumer sees it."""
    if record.name in names():
        raise ValueError(f"implementation {record.name!r} is already registered")
    _EXTRA.append(record)


def unregister(name: str) -> None:
    _EXTRA[:] = [r for r in _EXTRA if r.name != name]


def parity_presets() -> tuple[str, ...]:
    """The implementations `rmsprop-harness parity` compares by default."""
    return tuple(r.name for r in all_records() if r.parity)


def packages() -> tuple[str, ...]:
    """Distributions whose versions every env.json reports, in listing order."""
    return tuple(dict.fromkeys(p for r in all_records() for p in r.packages))


__all__ = ["KNOBS", "Implementation", "all_records", "get", "names", "packages", "parity_presets", "register",
           "unregister"]
