"""`RMSpropSpec`: every semantic knob of every RMSprop implementation, validated.

One frozen dataclass holds what differs between frameworks (see
`../shared/docs/rmsprop-variants.md`, section 8). The float64 reference
(`reference.rmsprop`) and the exact oracle (`reference.exact`) read nothing else,
so two specs that compare equal describe the same mathematics.

Knobs that only change rounding in exact arithmetic (rsqrt vs 1/sqrt, lerp vs
rho*a + (1-rho)*b, ...) are deliberately absent: the reference is the exact
recursion evaluated in float64. `centered_order` is the exception because it
changes which quantity cancels catastrophically when v ~ mean(g)^2.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

from .errors import InputValueError

EpsPlacement = Literal["inside", "outside"]
CenteredOrder = Literal["sub_then_eps", "eps_then_sub"]
LrPlacement = Literal["in_buffer", "after_buffer"]
WeightDecayMode = Literal["none", "coupled", "decoupled", "multiplicative"]
EmaStart = Literal["first_update", "initial_params"]
StateQuantization = Literal["none", "blockwise8"]

#: Hyperparameters that a framework may round to float32 before using them.
#: ``wd_factor`` is the whole multiplicative factor ``1 - lr*wd`` evaluated in
#: float32 (Keras on the torch backend computes it on a float32 lr variable).
#: ``clip`` is every clipping constant and factor (clipvalue, clipnorm, ``max(||g||, c)``,
#: ``min(1/N, 1/c)`` and ``c*min(...)``): Keras' torch backend turns a Python float into a
#: float32 tensor, and its ``ops.maximum``/``ops.minimum`` return float32, even for float64.
ROUNDABLE = ("lr", "decay", "eps", "momentum", "weight_decay", "wd_factor", "inverse_time_decay", "clip")
ROUNDING_ALIASES: dict[str, frozenset[str]] = {
    "exact": frozenset(),
    "lr_float32": frozenset({"lr"}),
    "all_float32": frozenset(ROUNDABLE),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "eps_placement": ("inside", "outside"),
    "centered_order": ("sub_then_eps", "eps_then_sub"),
    "lr_placement": ("in_buffer", "after_buffer"),
    "weight_decay_mode": ("none", "coupled", "decoupled", "multiplicative"),
    "ema_start": ("first_update", "initial_params"),
    "state_quantization": ("none", "blockwise8"),
}


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return InputValueError(f"RMSpropSpec.{field}={value!r} is invalid: allowed {allowed}")


@dataclasses.dataclass(frozen=True)
class RMSpropSpec:
    """The mathematics of one RMSprop configuration.

    Per step t (1-based) with gradient g, the reference computes::

        lr_t  = lr (or lr_schedule(t-1)) / (1 + inverse_time_decay*(t-1))
        g     = -g if maximize;  g = g / loss_scale;  gradient accumulation
        g     = clip(g)                      # value, then per-tensor norm, then global norm
        g     = g + wd*p                     # weight_decay_mode == "coupled"
        p     = p - p*wd*lr_t                # "decoupled" (Keras), before the update
        p     = p * (1 - lr_t*wd)            # "multiplicative" (Keras-torch, timm)
        v     = decay*v + (1-decay)*g^2       # v_0 = initial_accumulator
        m     = decay*m + (1-decay)*g         # centered only, m_0 = 0
        v^, m^ = v/(1-decay^n), m/(1-decay^n) # bias_correction (n = updates so far)
        d     = v^ - m^^2                     # or v^ when not centered
        den   = sqrt(d + eps)  | sqrt((v^ + eps) - m^^2)   # eps inside, by centered_order
              | sqrt(d) + eps                               # eps outside
        u     = g / den
        b     = mu*b + lr_t*u ; s = b  (nesterov: s = lr_t*u + mu*b)   # lr in buffer
        b     = mu*b + u      ; s = lr_t*b (nesterov: lr_t*(u + mu*b)) # lr after buffer
        p     = p - s                         # s = lr_t*u without momentum
        ema   = e*ema + (1-e)*p ; p = ema every ema_overwrite_frequency iterations

    Hyperparameters named in ``hyperparam_rounding`` are rounded to float32
    first, as the framework does when it stores them in float32 tensors.

    ``state_quantization="blockwise8"`` (bitsandbytes' 8-bit optimizers) says the framework stores ``v``
    block-wise 8-bit quantized for tensors of at least ``state_quantization_min_size`` elements. The
    reference still computes the exact recursion; `reference.quantization` derives, element by element,
    how far the quantized state can move the parameters, and the verdict allows that much on top of the
    rounding budget.
    """

    lr: float = 0.01
    decay: float = 0.9
    eps: float = 1e-8
    eps_placement: EpsPlacement = "inside"
    legacy_eps_switch: bool = False
    initial_accumulator: float = 0.0
    centered: bool = False
    centered_order: CenteredOrder = "sub_then_eps"
    momentum: float = 0.0
    lr_placement: LrPlacement = "in_buffer"
    nesterov: bool = False
    bias_correction: bool = False
    weight_decay: float = 0.0
    weight_decay_mode: WeightDecayMode = "none"
    maximize: bool = False
    hyperparam_rounding: frozenset[str] | str | Iterable[str] = frozenset()
    lr_schedule: Callable[[int], float] | None = None  # called with the 0-based step; compared by identity
    inverse_time_decay: float = 0.0
    clipvalue: float | None = None
    clipnorm: float | None = None
    global_clipnorm: float | None = None
    loss_scale: float | None = None
    accumulation_steps: int | None = None
    ema_momentum: float | None = None
    ema_overwrite_frequency: int | None = None
    ema_start: EmaStart = "first_update"
    state_quantization: StateQuantization = "none"
    state_quantization_min_size: int = 0
    framework: str = "custom"
    notes: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, at construction
        for name in ("lr", "decay", "eps", "initial_accumulator", "momentum", "weight_decay",
                     "inverse_time_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad(name, value, "a real number")
            if not math.isfinite(value) or value < 0:
                raise _bad(name, value, "a finite number >= 0")
            set_(self, name, float(value))
        if self.decay > 1:
            raise _bad("decay", self.decay, "0 <= decay <= 1")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise _bad(name, getattr(self, name), " | ".join(choices))
        for name in ("legacy_eps_switch", "centered", "nesterov", "bias_correction", "maximize"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "True or False")
        if self.weight_decay > 0 and self.weight_decay_mode == "none":
            raise _bad("weight_decay_mode", "none",
                       "coupled | decoupled | multiplicative when weight_decay > 0")
        for name in ("clipvalue", "clipnorm", "global_clipnorm", "loss_scale"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad(name, value, "None or a real number > 0")
            if not (math.isfinite(value) and value > 0):
                raise _bad(name, value, "None or a finite number > 0")
            set_(self, name, float(value))
        if self.accumulation_steps is not None and (
            isinstance(self.accumulation_steps, bool)
            or not isinstance(self.accumulation_steps, int)
            or self.accumulation_steps < 2
        ):
            raise _bad("accumulation_steps", self.accumulation_steps, "None or an integer >= 2")
        if self.ema_momentum is not None:
            if isinstance(self.ema_momentum, bool) or not isinstance(self.ema_momentum, int | float):
                raise _bad("ema_momentum", self.ema_momentum, "None or a number in [0, 1]")
            if not 0 <= self.ema_momentum <= 1:
                raise _bad("ema_momentum", self.ema_momentum, "None or a number in [0, 1]")
            set_(self, "ema_momentum", float(self.ema_momentum))
        if self.ema_overwrite_frequency is not None and (
            isinstance(self.ema_overwrite_frequency, bool)
            or not isinstance(self.ema_overwrite_frequency, int)
            or self.ema_overwrite_frequency < 1
        ):
            raise _bad("ema_overwrite_frequency", self.ema_overwrite_frequency,
                       "None or an integer >= 1")
        size = self.state_quantization_min_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _bad("state_quantization_min_size", size, "an integer >= 0")
        if self.lr_schedule is not None and not callable(self.lr_schedule):
            raise _bad("lr_schedule", self.lr_schedule, "None or a callable step -> lr")
        set_(self, "hyperparam_rounding", _normalise_rounding(self.hyperparam_rounding))
        set_(self, "notes", tuple(self.notes))
        if not isinstance(self.framework, str):
            raise _bad("framework", self.framework, "a string label")

    # ----------------------------------------------------------------- derived
    @property
    def effective_eps_placement(self) -> EpsPlacement:
        """Where eps really goes: tf_keras legacy puts it outside iff momentum == 0."""
        if self.legacy_eps_switch:
            return "outside" if self.momentum == 0 else "inside"
        return self.eps_placement

    @property
    def rounding_label(self) -> str:
        """'exact', 'lr_float32', 'all_float32' or the sorted list of rounded names."""
        for label, names in ROUNDING_ALIASES.items():
            if names == self.hyperparam_rounding:
                return label
        return "float32:" + ",".join(n for n in ROUNDABLE if n in self.hyperparam_rounding)

    def effective_knobs(self) -> dict[str, Any]:
        """`knobs()` with ``"-"`` for knobs that cannot change this configuration's result.

        Two specs whose effective knobs agree compute the same mathematics, so tables
        built on these highlight only the differences that matter.
        """
        out = self.knobs()
        na = "-"
        has_trace = self.momentum > 0
        if not (self.centered and self.effective_eps_placement == "inside"):
            out["centered_order"] = na
        if not has_trace:
            out["lr_placement"] = out["nesterov"] = na
        if self.weight_decay == 0:
            out["weight_decay_mode"] = "none"
        if self.ema_momentum is None:
            out["ema_start"] = out["ema_overwrite_frequency"] = na
        if self.state_quantization == "none":
            out["state_quantization_min_size"] = na
        relevant = {"lr", "decay"}
        relevant |= {"eps"} if self.eps else set()
        relevant |= {"momentum"} if has_trace else set()
        relevant |= {"weight_decay", "wd_factor"} if self.weight_decay else set()
        relevant |= {"inverse_time_decay"} if self.inverse_time_decay else set()
        relevant |= {"clip"} if (self.clipvalue, self.clipnorm, self.global_clipnorm) != (None,) * 3 else set()
        out["hyperparam_rounding"] = self.replace(
            hyperparam_rounding=self.hyperparam_rounding & relevant).rounding_label
        return out

    def rounded(self, name: str, value: float) -> float:
        """``value`` as the framework sees it: rounded through float32 if ``name`` is."""
        if name in self.hyperparam_rounding:
            return _f32(value)
        return float(value)

    def replace(self, **changes: Any) -> RMSpropSpec:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def knobs(self) -> dict[str, Any]:
        """The semantic knobs as plain Python values (for tables and JSON)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "hyperparam_rounding":
                value = self.rounding_label
            elif f.name == "lr_schedule":
                value = None if value is None else getattr(value, "__name__", "callable")
            elif f.name == "notes":
                continue
            out[f.name] = value
        out["effective_eps_placement"] = self.effective_eps_placement
        return out


def _f32(value: float) -> float:
    import numpy as np

    return float(np.float32(value))


def _normalise_rounding(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        if value in ROUNDING_ALIASES:
            return ROUNDING_ALIASES[value]
        raise _bad("hyperparam_rounding", value,
                   " | ".join(ROUNDING_ALIASES) + " or a set of " + ", ".join(ROUNDABLE))
    try:
        names = frozenset(value)
    except TypeError:
        raise _bad("hyperparam_rounding", value, "a label or a set of names") from None
    unknown = sorted(str(n) for n in names - set(ROUNDABLE))
    if unknown:
        raise _bad("hyperparam_rounding", value, "names from " + ", ".join(ROUNDABLE))
    return names
