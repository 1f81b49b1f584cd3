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
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

from .errors import InputKeyError, InputTypeError, InputValueError
from .spec import RMSpropSpec

Number = float | int
LearningRate = Number | Callable[[int], float]


def _checked(preset: Callable[..., RMSpropSpec]) -> Callable[..., RMSpropSpec]:
    """Arguments that do not fit the preset's signature are bad input (`InputTypeError`), as the
    framework's constructor would refuse them; errors from inside stay what they are."""
    signature = inspect.signature(preset)

    @functools.wraps(preset)
    def checked(*args: Any, **kwargs: Any) -> RMSpropSpec:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InputTypeError(f"{preset.__name__}: {exc}") from None
        return preset(*args, **kwargs)

    return checked


def _size(value: Any) -> int | None:
    """Elements of a tensor-like value (torch ``numel``, NumPy/TF ``size``/``shape``); None for scalars."""
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return int(numel())
        except (TypeError, ValueError):
            return None
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return math.prod(int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _number(framework: str, name: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> float:
    """Validate one hyperparameter with the framework's own argument name in the message.

    Python numbers, NumPy scalars and one-element tensors are numbers; strings are not (the
    frameworks would compare them with numbers and fail), nor are complex values or tensors
    with several elements."""
    if isinstance(value, bool | str | bytes | bytearray | complex):
        raise InputTypeError(f"{framework}: {name} must be a number, got {value!r}")
    if not isinstance(value, int | float):
        size = _size(value)
        if size is not None and size != 1:
            raise InputTypeError(f"{framework}: {name} must be a number, got a tensor of {size} elements")
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        if kind == "c" or "complex" in str(getattr(value, "dtype", "")):
            raise InputTypeError(f"{framework}: {name} must be a real number, got {value!r}")
        item = getattr(value, "item", None)
        try:
            value = float(item() if callable(item) and size == 1 else value)
        except (TypeError, ValueError, OverflowError):
            raise InputTypeError(f"{framework}: {name} must be a number, got {value!r}") from None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond any float
        raise InputValueError(f"{framework}: {name}={value} is invalid (too large)") from None
    if not (math.isfinite(value) and low <= value <= high):
        rng = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise InputValueError(f"{framework}: {name}={value!r} is invalid, allowed range {rng}")
    return value


def _arity(framework: str, name: str, value: Callable[..., Any]) -> int:
    """How many positional arguments a callable hyperparameter needs (0 or 1)."""
    try:
        params = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: take it as a schedule of the step
        return 1
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) > 1:
        raise InputTypeError(f"{framework}: {name} is a callable of {len(required)} arguments; expected a "
                             "schedule of the step or a callable with no arguments")
    return len(required)


def _lr(framework: str, name: str, value: Any, callables: str = "both") -> tuple[float, Callable[[int], float] | None]:
    """A constant learning rate, or a schedule ``step -> lr`` (0-based step).

    ``callables`` is what the framework accepts: ``"both"`` (Keras: a schedule of the step or a
    callable with no arguments, called every step), ``"step"`` (optax: a schedule of the count),
    ``"none-arg"`` (TF1: callables with no arguments only) or ``"none"`` (torch, the raw op)."""
    if callable(value) and not isinstance(value, int | float):
        if callables == "none":
            raise InputTypeError(f"{framework}: {name} must be a number, got a callable ({framework} takes no "
                                 "schedule here; the harness drives one as per-step learning rates)")
        arity = _arity(framework, name, value)
        if arity == 0 and callables in ("both", "none-arg"):
            return 0.0, _ZeroArgument(value)
        if arity == 1 and callables in ("both", "step"):
            return 0.0, value
        wanted = "a callable with no arguments" if callables == "none-arg" else "a schedule of the step"
        raise InputTypeError(f"{framework}: {name} must be a number or {wanted}")
    if callables == "none" and framework == "torch" and _size(value) not in (None, 1):
        raise InputValueError(f"{framework}: Tensor {name} must be 1-element")
    return _number(framework, name, value), None


class _ZeroArgument:
    """A callable hyperparameter the framework calls with no arguments every step, as a schedule."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "callable")

    def __call__(self, count: int) -> float:
        return float(self.fn())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ZeroArgument) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


def _value(framework: str, name: str, value: Any, **bounds: float) -> float:
    """A hyperparameter that may be a callable with no arguments (TF1's ``_call_if_callable``),
    evaluated once: the reference holds constants."""
    if callable(value) and not isinstance(value, int | float):
        if _arity(framework, name, value) != 0:
            raise InputTypeError(f"{framework}: {name} must be a number or a callable with no arguments")
        value = value()
    return _number(framework, name, value, **bounds)


def _tensor(value: Any) -> bool:
    """A TensorFlow tensor (not a variable), recognised without importing TensorFlow."""
    cls = type(value)
    return cls.__module__.startswith("tensorflow") and "Variable" not in cls.__name__


def _flag(framework: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | int) or value not in (0, 1):
        raise InputTypeError(f"{framework}: {name} must be True or False, got {value!r}")
    return bool(value)


def _unknown(framework: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise InputTypeError(f"{framework}() got an unexpected keyword argument(s): {names}")


# ------------------------------------------------------------------- PyTorch
@_checked
def torch(
    lr: LearningRate = 1e-2,
    alpha: Number = 0.99,
    eps: Number = 1e-8,
    weight_decay: Number = 0,
    momentum: Number = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> RMSpropSpec:
    """`torch.optim.RMSprop` (2.13): eps outside the sqrt, lr after the momentum buffer,
    coupled L2 weight decay added after ``maximize`` negates the gradient."""
    fw = "torch"
    lr_value, schedule = _lr(fw, "lr", lr, callables="none")
    notes: list[str] = []
    if foreach and differentiable:
        raise InputValueError("torch: foreach=True and differentiable=True are mutually exclusive")
    for name, value in (("capturable", capturable), ("maximize", maximize),
                        ("differentiable", differentiable)):
        _flag(fw, name, value)
    if foreach is not None:
        _flag(fw, "foreach", foreach)
    if capturable:
        notes.append("capturable=True with a Tensor lr divides by -lr instead of multiplying: "
                     "same mathematics, different rounding")
    wd = _number(fw, "weight_decay", weight_decay)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_number(fw, "alpha", alpha, high=1.0),
        eps=_number(fw, "eps", eps),
        eps_placement="outside",
        initial_accumulator=0.0,
        centered=_flag(fw, "centered", centered),
        momentum=_number(fw, "momentum", momentum),
        lr_placement="after_buffer",
        weight_decay=wd,
        weight_decay_mode="coupled" if wd > 0 else "none",
        maximize=bool(maximize),
        hyperparam_rounding="exact",
        framework=fw,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------- Keras 3
def _keras3(
    fw: str,
    *,
    learning_rate: LearningRate,
    rho: Number,
    momentum: Number,
    epsilon: Number,
    centered: bool,
    weight_decay: Number | None,
    clipnorm: Number | None,
    clipvalue: Number | None,
    global_clipnorm: Number | None,
    use_ema: bool,
    ema_momentum: Number,
    ema_overwrite_frequency: int | None,
    loss_scale_factor: Number | None,
    gradient_accumulation_steps: int | None,
    kwargs: dict[str, Any],
    centered_order: str,
    weight_decay_mode: str,
    rounding: frozenset[str],
) -> RMSpropSpec:
    notes: list[str] = []
    if "decay" in kwargs:
        kwargs = dict(kwargs)
        if kwargs.pop("decay") is not None:
            notes.append("decay= is accepted with a warning and ignored by Keras 3")
    _unknown(fw, kwargs)
    lr_value, schedule = _lr(fw, "learning_rate", learning_rate)
    if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise InputValueError(f"{fw}: only one of clipnorm, clipvalue and global_clipnorm can be set")
    clips = _keras_clips(fw, notes, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                         clipvalue=clipvalue)
    if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
        raise InputValueError(f"{fw}: gradient_accumulation_steps={gradient_accumulation_steps!r} "
                         "is invalid, allowed an integer >= 2")
    ema = _keras_ema(fw, use_ema, ema_momentum, ema_overwrite_frequency, notes, "first_update")
    wd = None if weight_decay is None else _number(fw, "weight_decay", weight_decay)
    if "clip" in rounding and any(v is not None for v in clips.values()):
        notes.append("clipping on the torch backend runs in float32 even for float64 variables "
                     "(Python floats become float32 tensors; ops.maximum/minimum return float32)")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_number(fw, "rho", rho, high=1.0),
        eps=_number(fw, "epsilon", epsilon),
        eps_placement="inside",
        centered=_flag(fw, "centered", centered),
        centered_order=centered_order,
        momentum=_number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        weight_decay=wd or 0.0,
        weight_decay_mode="none" if wd is None else weight_decay_mode,
        hyperparam_rounding=rounding,
        loss_scale=None if loss_scale_factor is None
        else _number(fw, "loss_scale_factor", loss_scale_factor, low=math.ulp(0.0)),
        accumulation_steps=gradient_accumulation_steps or None,
        framework=fw,
        notes=tuple(notes),
        **clips,
        **ema,
    )


def _keras_clips(fw: str, notes: list[str], **clips: Number | None) -> dict[str, float | None]:
    """Keras (3 and tf_keras new) apply only a clip that is set and > 0."""
    out: dict[str, float | None] = {}
    for name, value in clips.items():
        if value is not None:
            value = _number(fw, name, value, low=-math.inf)
            if value <= 0:
                notes.append(f"{name}={value:g} is silently ignored (clipping needs a value > 0)")
                value = None
        out[name] = value
    return out


def _keras_ema(fw: str, use_ema: bool, ema_momentum: Number, freq: int | None,
               notes: list[str], start: str) -> dict[str, Any]:
    if not _flag(fw, "use_ema", use_ema):
        return {}
    m = _number(fw, "ema_momentum", ema_momentum, high=1.0)
    if freq is not None and freq != 0 and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
        raise InputValueError(f"{fw}: ema_overwrite_frequency={freq!r} is invalid, "
                         "allowed None or an integer >= 1")
    if not freq:
        notes.append("use_ema=True without ema_overwrite_frequency leaves the trained variables "
                     "unchanged until finalize_variable_values()")
    return {"ema_momentum": m, "ema_overwrite_frequency": freq or None, "ema_start": start}


def _keras3_signature(framework: str, centered_order: str, weight_decay_mode: str,
                      rounding: frozenset[str], doc: str) -> Callable[..., RMSpropSpec]:
    def preset(
        learning_rate: LearningRate = 0.001,
        rho: Number = 0.9,
        momentum: Number = 0.0,
        epsilon: Number = 1e-7,
        centered: bool = False,
        weight_decay: Number | None = None,
        clipnorm: Number | None = None,
        clipvalue: Number | None = None,
        global_clipnorm: Number | None = None,
        use_ema: bool = False,
        ema_momentum: Number = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: Number | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> RMSpropSpec:
        return _keras3(
            framework, learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon,
            centered=centered, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
            global_clipnorm=global_clipnorm, use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency, loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, kwargs=kwargs,
            centered_order=centered_order, weight_decay_mode=weight_decay_mode, rounding=rounding,
        )

    preset.__name__ = preset.__qualname__ = framework
    preset.__doc__ = doc
    return _checked(preset)


keras = _keras3_signature(
    "keras", "sub_then_eps", "decoupled", frozenset({"lr", "weight_decay"}),
    """`keras.optimizers.RMSprop` (Keras 3.15) on the TensorFlow backend, the Keras default:
    eps inside the sqrt, lr in the momentum buffer, lr a float32 variable (floatx), decoupled
    weight decay ``p -= p*wd*lr`` with wd cast through float32, applied after clipping.""",
)
keras_jax = _keras3_signature(
    "keras_jax", "sub_then_eps", "decoupled", frozenset({"lr"}),
    """Keras 3 on the JAX backend: as `keras`, but the weight decay factor stays exact.""",
)
keras_torch = _keras3_signature(
    "keras_torch", "eps_then_sub", "multiplicative",
    frozenset({"lr", "weight_decay", "wd_factor", "clip"}),
    """Keras 3 on the torch backend (its own foreach code): centered ``(v + eps) - m^2``,
    weight decay ``p *= 1 - wd*lr`` with the factor computed in float32, and clipping with
    float32 constants and factors (the backend's scalar conversion and ops.maximum/minimum).""",
)


# ------------------------------------------------------------------ tf_keras
@_checked
def tf_keras(
    learning_rate: LearningRate = 0.001,
    rho: Number = 0.9,
    momentum: Number = 0.0,
    epsilon: Number = 1e-7,
    centered: bool = False,
    weight_decay: Number | None = None,
    clipnorm: Number | None = None,
    clipvalue: Number | None = None,
    global_clipnorm: Number | None = None,
    use_ema: bool = False,
    ema_momentum: Number = 0.99,
    ema_overwrite_frequency: int | None = 100,
    jit_compile: bool = True,
    name: str = "RMSprop",
    **kwargs: Any,
) -> RMSpropSpec:
    """`tf_keras.optimizers.RMSprop` (2.21, the Keras 2 "new" optimizer): eps inside (rsqrt),
    lr float32, first clip that is set wins (clipnorm, global_clipnorm, clipvalue)."""
    fw = "tf_keras"
    kwargs = dict(kwargs)
    kwargs.pop("is_legacy_optimizer", None)
    notes: list[str] = []
    if kwargs.pop("lr", None):
        notes.append("lr= is deprecated and silently IGNORED (only a warning is logged); "
                     "learning_rate is used")
    for legacy in ("decay", "gradient_aggregator", "gradient_transformers"):
        if legacy in kwargs:
            raise InputValueError(f"{fw}: {legacy} is deprecated in the new tf_keras optimizer; "
                             "use tf_keras_legacy")
    _unknown(fw, kwargs)
    _flag(fw, "jit_compile", jit_compile)
    if clipnorm is not None and global_clipnorm is not None:
        raise InputValueError(f"{fw}: cannot accept both clipnorm and global_clipnorm")
    clips = _keras_clips(fw, notes, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                         clipvalue=clipvalue)
    set_ = [k for k in ("clipnorm", "global_clipnorm", "clipvalue") if clips[k] is not None]
    for ignored in set_[1:]:
        notes.append(f"{ignored} is silently ignored because {set_[0]} is set")
        clips[ignored] = None
    lr_value, schedule = _lr(fw, "learning_rate", learning_rate)
    wd = None if weight_decay is None else _number(fw, "weight_decay", weight_decay)
    ema = _keras_ema(fw, use_ema, ema_momentum, ema_overwrite_frequency, notes, "initial_params")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_number(fw, "rho", rho, high=1.0),
        eps=_number(fw, "epsilon", epsilon),
        eps_placement="inside",
        centered=_flag(fw, "centered", centered),
        momentum=_number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        weight_decay=wd or 0.0,
        weight_decay_mode="none" if wd is None else "decoupled",
        hyperparam_rounding={"lr", "weight_decay"},
        framework=fw,
        notes=tuple(notes),
        **clips,
        **ema,
    )


@_checked
def tf_keras_legacy(
    learning_rate: LearningRate = 0.001,
    rho: Number = 0.9,
    momentum: Number = 0.0,
    epsilon: Number = 1e-7,
    centered: bool = False,
    name: str = "RMSprop",
    **kwargs: Any,
) -> RMSpropSpec:
    """`tf_keras.optimizers.legacy.RMSprop` (OptimizerV2): eps OUTSIDE the sqrt when
    momentum == 0 and inside when > 0; lr, rho, momentum and ``decay`` in float32;
    ``epsilon=0`` silently becomes 1e-7; every clip that is set applies, in order
    clipvalue, clipnorm, global_clipnorm; ``decay=`` is inverse-time lr decay."""
    fw = "tf_keras_legacy"
    allowed = {"clipnorm", "clipvalue", "lr", "decay", "global_clipnorm"}
    _unknown(fw, {k: v for k, v in kwargs.items() if k not in allowed})
    for k, v in kwargs.items():
        if v is not None and _number(fw, k, v, low=-math.inf) < 0:
            raise InputValueError(f"{fw}: {k}={v!r} is invalid, allowed range >= 0")
    if kwargs.get("clipnorm") is not None and kwargs.get("global_clipnorm") is not None:
        raise InputValueError(f"{fw}: cannot accept both clipnorm and global_clipnorm")
    notes: list[str] = []
    if "lr" in kwargs:
        learning_rate = kwargs["lr"]
    lr_value, schedule = _lr(fw, "learning_rate", learning_rate)
    eps = _value(fw, "epsilon", epsilon)
    if not eps:
        notes.append("epsilon=0 is silently replaced by backend epsilon 1e-7")
        eps = 1e-7
    # tf_keras takes its momentum path (the fused raw op, eps inside) for a tensor or callable momentum
    # whatever its value: `isinstance(momentum, tf.Tensor) or callable(momentum) or momentum > 0`
    forced = callable(momentum) or _tensor(momentum)
    mom = _value(fw, "momentum", momentum, high=1.0)
    if forced:
        notes.append("momentum given as a tensor or callable: the momentum path (the raw op, eps inside the "
                     "sqrt) is taken whatever its value")
    elif mom == 0:
        notes.append("momentum == 0: eps goes OUTSIDE the sqrt (python path); "
                     "momentum > 0 uses the raw op with eps inside")
    clips = {k: kwargs.get(k) for k in ("clipvalue", "clipnorm", "global_clipnorm")}
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_value(fw, "rho", rho, high=1.0),
        eps=eps,
        eps_placement="inside",
        legacy_eps_switch=not forced,
        centered=_flag(fw, "centered", centered),
        momentum=mom,
        lr_placement="in_buffer",
        hyperparam_rounding={"lr", "decay", "momentum", "inverse_time_decay"},
        inverse_time_decay=float(kwargs.get("decay") or 0.0),
        framework=fw,
        notes=tuple(notes),
        **clips,
    )


# ----------------------------------------------------------------------- TF1
@_checked
def tf1(
    learning_rate: LearningRate,
    decay: Number = 0.9,
    momentum: Number = 0.0,
    epsilon: Number = 1e-10,
    use_locking: bool = False,
    centered: bool = False,
    name: str = "RMSProp",
) -> RMSpropSpec:
    """`tf.compat.v1.train.RMSPropOptimizer`: the accumulator starts at ONE, eps inside,
    lr in the buffer, and every hyperparameter (lr, decay, momentum, eps) in float32."""
    fw = "tf1"
    lr_value, schedule = _lr(fw, "learning_rate", learning_rate, callables="none-arg")
    _flag(fw, "use_locking", use_locking)
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_value(fw, "decay", decay, high=1.0),
        eps=_value(fw, "epsilon", epsilon),
        eps_placement="inside",
        initial_accumulator=1.0,
        centered=_flag(fw, "centered", centered),
        momentum=_value(fw, "momentum", momentum),
        lr_placement="in_buffer",
        hyperparam_rounding={"lr", "decay", "momentum", "eps"},
        framework=fw,
        notes=("the accumulator starts at 1, not 0 (the TF docs' migration table omits this)",),
    )


# -------------------------------------------------------------- TF raw ops
@_checked
def tf_raw(
    lr: LearningRate,
    rho: Number,
    momentum: Number,
    epsilon: Number,
    centered: bool = False,
    ms_init: Number = 0.0,
) -> RMSpropSpec:
    """`tf.raw_ops.ResourceApplyRMSProp` / `ResourceApplyCenteredRMSProp` (``centered``), the
    fused C++ kernels that TF1 and the legacy Keras momentum path call: eps inside, lr in the
    ``mom`` buffer (which always exists; with momentum 0 it holds ``lr*g/den``). The op has
    no defaults: lr, rho, momentum and epsilon are its scalar inputs, in the variable's
    dtype; ``ms_init`` is the caller's initial mean square (TF1 uses 1)."""
    fw = "tf_raw"
    lr_value, schedule = _lr(fw, "lr", lr, callables="none")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_number(fw, "rho", rho, high=1.0),
        eps=_number(fw, "epsilon", epsilon),
        eps_placement="inside",
        initial_accumulator=_number(fw, "ms_init", ms_init),
        centered=_flag(fw, "centered", centered),
        centered_order="sub_then_eps",
        momentum=_number(fw, "momentum", momentum),
        lr_placement="in_buffer",
        hyperparam_rounding="exact",
        framework=fw,
    )


# --------------------------------------------------------------------- Optax
@_checked
def optax(
    learning_rate: LearningRate,
    decay: Number = 0.9,
    eps: Number = 1e-8,
    initial_scale: Number = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Number | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> RMSpropSpec:
    """`optax.rmsprop` (0.2.8): ``chain(scale_by_rms|scale_by_stddev, scale_by_learning_rate,
    trace)``, so lr sits in the momentum buffer; a schedule is called with count 0 first."""
    fw = "optax"
    lr_value, schedule = _lr(fw, "learning_rate", learning_rate, callables="step")
    notes: list[str] = []
    mom = None if momentum is None else _number(fw, "momentum", momentum)
    if _flag(fw, "nesterov", nesterov) and mom is None:
        notes.append("nesterov=True has no effect without momentum")
    return RMSpropSpec(
        lr=lr_value,
        lr_schedule=schedule,
        decay=_number(fw, "decay", decay, high=1.0),
        eps=_number(fw, "eps", eps),
        eps_placement="inside" if _flag(fw, "eps_in_sqrt", eps_in_sqrt) else "outside",
        initial_accumulator=_number(fw, "initial_scale", initial_scale),
        centered=_flag(fw, "centered", centered),
        momentum=mom or 0.0,
        nesterov=bool(nesterov) and mom is not None,
        lr_placement="in_buffer",
        bias_correction=_flag(fw, "bias_correction", bias_correction),
        hyperparam_rounding="exact",
        framework=fw,
        notes=tuple(notes),
    )


# ---------------------------------------------------------- the knobs as-is
@_checked
def spec(**knobs: Any) -> RMSpropSpec:
    """`RMSpropSpec`'s own knobs, for an implementation that takes the semantics directly
    (a user-supplied kernel): ``spec(lr=1e-3, eps_placement="outside", momentum=0.9)``."""
    allowed = [k for k in RMSpropSpec().knobs() if k not in ("effective_eps_placement", "framework")]
    _unknown("spec", {k: v for k, v in knobs.items() if k not in allowed})
    return RMSpropSpec(**knobs, framework="spec")


#: Every preset by name, in the order `explain` shows them.
PRESETS: dict[str, Callable[..., RMSpropSpec]] = {
    "torch": torch,
    "keras": keras,
    "keras_jax": keras_jax,
    "keras_torch": keras_torch,
    "tf_keras": tf_keras,
    "tf_keras_legacy": tf_keras_legacy,
    "tf1": tf1,
    "tf_raw": tf_raw,
    "optax": optax,
    "spec": spec,
}

#: Arguments a preset needs when the framework has no default (required lr).
REQUIRED_DEFAULTS: dict[str, dict[str, Any]] = {
    "tf1": {"learning_rate": 0.001},
    "tf_raw": {"lr": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "optax": {"learning_rate": 0.001},
}


def get(name: str) -> Callable[..., RMSpropSpec]:
    """The preset called ``name``; `KeyError` naming the known presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputKeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def defaults(name: str) -> RMSpropSpec:
    """The preset with the framework's defaults (lr 1e-3 where the framework requires one)."""
    return get(name)(**REQUIRED_DEFAULTS.get(name, {}))
