"""`spec`: `RMSpropSpec`'s own knobs as arguments, for an implementation that takes the semantics directly."""

from __future__ import annotations

from typing import Any

from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def spec(**knobs: Any) -> RMSpropSpec:
    """`RMSpropSpec`'s own knobs, for an implementation that takes the semantics directly
    (a user-supplied kernel): ``spec(lr=1e-3, eps_placement="outside", momentum=0.9)``."""
    allowed = [k for k in RMSpropSpec().knobs() if k not in ("effective_eps_placement", "framework")]
    A.unknown("spec", {k: v for k, v in knobs.items() if k not in allowed})
    return RMSpropSpec(**knobs, framework="spec")


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    default = RMSpropSpec()
    args = {k: getattr(spec, k) for k in spec.knobs()
            if k not in ("effective_eps_placement", "framework") and getattr(spec, k) != getattr(default, k)}
    if "hyperparam_rounding" in args:
        args["hyperparam_rounding"] = sorted(args["hyperparam_rounding"])
    return args


RECORDS = [Implementation(
    name="spec", preset=spec, title="reference.RMSpropSpec", call="reference.RMSpropSpec({})", native=_native,
    knobs={k: k for k in ("lr", "decay", "eps", "momentum", "centered")},
    knob_values={"weight_decay": lambda value: {"weight_decay": value,
                                                "weight_decay_mode": "coupled" if value else "none"}},
    parity=False, rank=90)]
