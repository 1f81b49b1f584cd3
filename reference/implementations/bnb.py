"""bitsandbytes `bitsandbytes.optim.RMSprop` / `RMSprop32bit` / `RMSprop8bit` (0.50.2, CPU backend)."""

from __future__ import annotations

from typing import Any

from ..errors import InputValueError
from ..spec import RMSpropSpec
from . import Implementation
from . import _args as A


@A.checked
def bitsandbytes(lr: A.LearningRate = 1e-2, alpha: A.Number = 0.99, eps: A.Number = 1e-8,
                 weight_decay: A.Number = 0, momentum: A.Number = 0, centered: bool = False,
                 optim_bits: int = 32, args: None = None, min_8bit_size: int = 4096) -> RMSpropSpec:
    """`bitsandbytes.optim.RMSprop` (0.50.2; ``optim/rmsprop.py``, kernels ``backends/cpu/ops.py``):
    ``v = alpha*v + (1-alpha)*g^2`` from zero, ``p -= lr*g/(sqrt(v) + eps)`` (eps outside, torch's form),
    coupled L2 (``g += wd*p``), all in float32 (a float64 parameter is computed in float32 and written back).
    ``centered=True`` and ``alpha=0`` raise. ``momentum`` is accepted (stored as ``betas[1]``, checked < 1)
    and IGNORED: no RMSprop kernel reads it (measured: identical trajectories with momentum 0 and 0.9).
    ``optim_bits=8`` (or `RMSprop8bit`) keeps the state block-wise 8-bit quantized for tensors of at least
    ``min_8bit_size`` elements."""
    fw = "bitsandbytes"
    lr_value, schedule = A.lr(fw, "lr", lr, callables="none")
    if A.flag(fw, "centered", centered):
        raise InputValueError("bitsandbytes: Centered RMSprop is not supported! (NotImplementedError)")
    decay = A.number(fw, "alpha", alpha, high=1.0)
    if decay == 0:
        raise InputValueError("bitsandbytes: RMSprop with alpha==0.0 is not supported! (NotImplementedError)")
    mom = A.number(fw, "momentum", momentum, high=1.0)
    if mom >= 1:
        raise InputValueError(f"bitsandbytes: Invalid beta parameter at index 1: {momentum}")
    if optim_bits not in (8, 32) or isinstance(optim_bits, bool):
        raise InputValueError(f"bitsandbytes: Amount of optimizer bits not supported: {optim_bits!r}")
    if isinstance(min_8bit_size, bool) or not isinstance(min_8bit_size, int) or min_8bit_size < 0:
        raise InputValueError(f"bitsandbytes: min_8bit_size must be an integer >= 0, got {min_8bit_size!r}")
    notes = ["computes in float32: a float64 parameter is rounded to float32 every step"]
    if mom > 0:
        notes.append(f"momentum={mom:g} is accepted and IGNORED: the RMSprop kernels read no momentum")
    if optim_bits == 8:
        notes.append(f"8-bit block-wise quantized state for tensors of >= {min_8bit_size} elements")
    wd = A.number(fw, "weight_decay", weight_decay)
    eight = optim_bits == 8
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=decay,
        eps=A.number(fw, "eps", eps),
        eps_placement="outside",
        initial_accumulator=0.0,
        momentum=0.0,
        lr_placement="after_buffer",
        weight_decay=wd,
        weight_decay_mode="coupled" if wd > 0 else "none",
        hyperparam_rounding="exact",  # float32 scalars in float32 arithmetic, as torch's: within the budget
        state_quantization="blockwise8" if eight else "none",
        state_quantization_min_size=min_8bit_size if eight else 0,
        framework=fw,
        notes=tuple(notes),
    )


@A.checked
def bitsandbytes_8bit(lr: A.LearningRate = 1e-2, alpha: A.Number = 0.99, eps: A.Number = 1e-8,
                      weight_decay: A.Number = 0, momentum: A.Number = 0, centered: bool = False, args: None = None,
                      min_8bit_size: int = 4096) -> RMSpropSpec:
    """`bitsandbytes.optim.RMSprop8bit`: `bitsandbytes` with ``optim_bits=8``. The state of tensors of at least
    ``min_8bit_size`` elements is block-wise 8-bit (blocks of 256, bitsandbytes' dynamic map); the verdict
    allows the error that can add, derived per element (`reference.quantization`)."""
    spec = bitsandbytes(lr, alpha, eps, weight_decay, momentum, centered, 8, args, min_8bit_size)
    return spec.replace(framework="bitsandbytes_8bit")


def _native(spec: RMSpropSpec) -> dict[str, Any]:
    args = {"lr": A.lr_of(spec), "alpha": spec.decay, "eps": spec.eps}
    if spec.weight_decay > 0:
        args["weight_decay"] = spec.weight_decay
    if spec.state_quantization == "blockwise8":
        args |= {"optim_bits": 8, "min_8bit_size": spec.state_quantization_min_size}
    return args


def _native_8bit(spec: RMSpropSpec) -> dict[str, Any]:
    args = _native(spec)
    args.pop("optim_bits", None)
    return args  # from a float state: RMSprop8bit with its own min_8bit_size (the state is quantized: not exact)


RECORDS = [Implementation(
    name="bitsandbytes", preset=bitsandbytes, title="bitsandbytes.optim.RMSprop",
    call="bitsandbytes.optim.RMSprop(params, {})", native=_native,
    knobs={"lr": "lr", "decay": "alpha", "eps": "eps", "weight_decay": "weight_decay"},
    packages=("bitsandbytes",), rank=66, adapters=("harness.adapters.bnb_adapter:Bnb32",),
    rewrites=("momentum is accepted and ignored", "float64 parameters are computed in float32"),
    examples=({}, {"lr": 0.003, "alpha": 0.9, "weight_decay": 0.1}, {"lr": 0.01, "eps": 1e-3},
              {"lr": 0.003, "momentum": 0.9}),
), Implementation(
    name="bitsandbytes_8bit", preset=bitsandbytes_8bit, title="bitsandbytes.optim.RMSprop8bit",
    call="bitsandbytes.optim.RMSprop8bit(params, {})", native=_native_8bit,
    knobs={"lr": "lr", "decay": "alpha", "eps": "eps", "weight_decay": "weight_decay"},
    parity=False,  # parity compares float64 references: the same mathematics as the 32-bit optimizer
    packages=("bitsandbytes",), rank=67, adapters=("harness.adapters.bnb_adapter:Bnb8",),
    rewrites=("momentum is accepted and ignored", "float64 parameters are computed in float32"),
    examples=({"min_8bit_size": 4}, {"lr": 0.003, "alpha": 0.9, "weight_decay": 0.1, "min_8bit_size": 4}),
)]
