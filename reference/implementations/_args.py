"""Argument checking shared by the presets: each framework's own names in every message.

A preset validates its arguments the way its framework would and raises `InputTypeError` or
`InputValueError` (bad input, which are also `TypeError`/`ValueError`, as the framework raises).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

from ..errors import InputTypeError, InputValueError
from ..spec import RMSpropSpec

Number = float | int
LearningRate = Number | Callable[[int], float]


def checked(preset: Callable[..., RMSpropSpec]) -> Callable[..., RMSpropSpec]:
    """Arguments that do not fit the preset's signature are bad input (`InputTypeError`), as the
    framework's constructor would refuse them; errors from inside stay what they are."""
    signature = inspect.signature(preset)

    @functools.wraps(preset)
    def checked(*args: Any, **kwargs: Any) -> RMSpropSpec:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InputTypeError(f"{preset.__name__}: {exc}{_suggest(kwargs, signature)}") from None
        return preset(*args, **kwargs)

    return checked


def _suggest(kwargs: dict[str, Any], signature: inspect.Signature) -> str:
    """"; did you mean 'alpha'?" for a mistyped argument name (the suites' keys say the same)."""
    import difflib

    known = [n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            return f"; did you mean {close[0]!r}?" if close else f" (arguments: {', '.join(known)})"
    return ""


def tensor_size(value: Any) -> int | None:
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


def number(framework: str, name: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> float:
    """Validate one hyperparameter with the framework's own argument name in the message.

    Python numbers, NumPy scalars and one-element tensors are numbers; strings are not (the
    frameworks would compare them with numbers and fail), nor are complex values or tensors
    with several elements."""
    if isinstance(value, bool | str | bytes | bytearray | complex):
        raise InputTypeError(f"{framework}: {name} must be a number, got {value!r}")
    if not isinstance(value, int | float):
        size = tensor_size(value)
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


def arity_of(framework: str, name: str, value: Callable[..., Any]) -> int:
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


def lr(framework: str, name: str, value: Any, callables: str = "both") -> tuple[float, Callable[[int], float] | None]:
    """A constant learning rate, or a schedule ``step -> lr`` (0-based step).

    ``callables`` is what the framework accepts: ``"both"`` (Keras: a schedule of the step or a
    callable with no arguments, called every step), ``"step"`` (optax: a schedule of the count),
    ``"none-arg"`` (TF1: callables with no arguments only) or ``"none"`` (torch, the raw op)."""
    if callable(value) and not isinstance(value, int | float):
        if callables == "none":
            raise InputTypeError(f"{framework}: {name} must be a number, got a callable ({framework} takes no "
                                 "schedule here; the harness drives one as per-step learning rates)")
        arity = arity_of(framework, name, value)
        if arity == 0 and callables in ("both", "none-arg"):
            return 0.0, ZeroArgument(value)
        if arity == 1 and callables in ("both", "step"):
            return 0.0, value
        wanted = "a callable with no arguments" if callables == "none-arg" else "a schedule of the step"
        raise InputTypeError(f"{framework}: {name} must be a number or {wanted}")
    if callables == "none" and framework == "torch" and tensor_size(value) not in (None, 1):
        raise InputValueError(f"{framework}: Tensor {name} must be 1-element")
    return number(framework, name, value), None


class ZeroArgument:
    """A callable hyperparameter the framework calls with no arguments every step, as a schedule."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "callable")

    def __call__(self, count: int) -> float:
        return float(self.fn())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZeroArgument) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


def hyper(framework: str, name: str, value: Any, **bounds: float) -> float:
    """A hyperparameter that may be a callable with no arguments (TF1's ``_call_if_callable``),
    evaluated once: the reference holds constants."""
    if callable(value) and not isinstance(value, int | float):
        if arity_of(framework, name, value) != 0:
            raise InputTypeError(f"{framework}: {name} must be a number or a callable with no arguments")
        value = value()
    return number(framework, name, value, **bounds)


def is_tf_tensor(value: Any) -> bool:
    """A TensorFlow tensor (not a variable), recognised without importing TensorFlow."""
    cls = type(value)
    return cls.__module__.startswith("tensorflow") and "Variable" not in cls.__name__


def flag(framework: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | int) or value not in (0, 1):
        raise InputTypeError(f"{framework}: {name} must be True or False, got {value!r}")
    return bool(value)


def lr_of(spec: RMSpropSpec) -> Any:
    """The learning rate to write back as an argument: the schedule when there is one."""
    return spec.lr_schedule if spec.lr_schedule is not None else spec.lr


def unknown(framework: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise InputTypeError(f"{framework}() got an unexpected keyword argument(s): {names}")




__all__ = ["LearningRate", "Number", "ZeroArgument", "arity_of", "checked", "flag", "hyper", "is_tf_tensor", "lr",
           "lr_of", "number", "tensor_size", "unknown"]
