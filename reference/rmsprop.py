"""The float64 reference RMSprop: ``init`` / ``update`` pure functions and ``run_reference``.

Written to read like the equations in `RMSpropSpec`'s docstring. Parameters are
a single array, a ``dict`` of named arrays or a list/tuple of arrays (a model);
all arithmetic is elementwise float64 NumPy except the global gradient norm.

The stateful form keeps memory at O(parameters): ``run_reference`` is only a
loop over ``update`` that stores what the caller asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .errors import InputTypeError, InputValueError
from .spec import RMSpropSpec

Tree = Any  # np.ndarray | Mapping[str, np.ndarray] | Sequence[np.ndarray]


class ComplexParametersError(InputTypeError):
    """Complex parameters or gradients: refused with the reason (see `_real`)."""


class RMSpropState(NamedTuple):
    """Optimizer state; every array field is a tuple with one float64 array per tensor."""

    count: int  # calls to `update` so far (the framework's raw iteration counter)
    updates: int  # RMSprop updates applied (differs from count under accumulation)
    nu: tuple[np.ndarray, ...]  # mean square, v
    mu: tuple[np.ndarray, ...] | None  # mean gradient (centered), m
    trace: tuple[np.ndarray, ...] | None  # momentum buffer, b
    accumulator: tuple[np.ndarray, ...] | None  # summed gradients (accumulation)
    ema: tuple[np.ndarray, ...] | None  # moving average of the parameters


# ----------------------------------------------------------------------- trees
def _real(x: Any) -> np.ndarray:
    """``x`` as float64; complex input is refused, never truncated to its real part."""
    if np.iscomplexobj(x):
        raise ComplexParametersError(
            "complex parameters are not modelled: torch treats a complex tensor as pairs of reals "
            "(view_as_real), optax uses |g|^2 for the mean square; for torch's semantics pass the real "
            "view (np.stack([z.real, z.imag], -1)) of parameters and gradients")
    try:
        return np.asarray(x, np.float64)
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"parameters and gradients must be arrays of real numbers ({exc})") from None


def _flatten(tree: Tree) -> tuple[list[np.ndarray], Callable[[Sequence[np.ndarray]], Tree]]:
    if isinstance(tree, Mapping):
        keys = list(tree)
        return [_real(tree[k]) for k in keys], lambda xs: dict(zip(keys, xs, strict=True))
    if isinstance(tree, list | tuple):
        kind = type(tree)
        return [_real(x) for x in tree], lambda xs: kind(xs)
    return [_real(tree)], lambda xs: xs[0]


def _leaves(tree: Tree, like: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
    leaves, _ = _flatten(tree)
    if len(leaves) != len(like) or any(a.shape != b.shape for a, b in zip(leaves, like, strict=True)):
        raise InputValueError(
            f"{what} shapes {[a.shape for a in leaves]} do not match the parameters "
            f"{[b.shape for b in like]}"
        )
    return leaves


# --------------------------------------------------------------- the equations
def init(spec: RMSpropSpec, params: Tree) -> RMSpropState:
    """State before the first step: v = initial_accumulator, everything else zero."""
    ps, _ = _flatten(params)
    zeros = tuple(np.zeros_like(p) for p in ps)
    return RMSpropState(
        count=0,
        updates=0,
        nu=tuple(np.full_like(p, spec.initial_accumulator) for p in ps),
        mu=zeros if spec.centered else None,
        trace=zeros if spec.momentum > 0 or spec.nesterov else None,
        accumulator=zeros if spec.accumulation_steps else None,
        ema=tuple(p.copy() for p in ps) if spec.ema_momentum is not None else None,
    )


def learning_rate(spec: RMSpropSpec, count: int, lr: float | None = None) -> float:
    """lr of the call with 0-based index ``count``: given > schedule > constant."""
    if lr is None:
        lr = spec.lr_schedule(count) if spec.lr_schedule is not None else spec.lr
    lr = spec.rounded("lr", float(lr))
    if spec.inverse_time_decay > 0:  # tf_keras legacy `decay=`: lr / (1 + decay * iterations)
        lr = lr / (1.0 + spec.rounded("inverse_time_decay", spec.inverse_time_decay) * count)
    return lr


def clip(spec: RMSpropSpec, grads: list[np.ndarray]) -> list[np.ndarray]:
    """Value clip, then per-tensor norm clip, then global norm clip (each if set)."""
    r = lambda x: spec.rounded("clip", x)  # noqa: E731 - identity unless the framework clips in float32
    if spec.clipvalue is not None:
        v = r(spec.clipvalue)
        grads = [np.clip(g, -v, v) for g in grads]
    if spec.clipnorm is not None:
        c = r(spec.clipnorm)
        grads = [g * c / r(max(float(np.linalg.norm(g.ravel())), c)) for g in grads]
    if spec.global_clipnorm is not None:
        c = r(spec.global_clipnorm)
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        with np.errstate(divide="ignore", invalid="ignore"):
            # Keras' form c*min(1/N, 1/c) + (N - N): a NaN or inf norm poisons every gradient
            scale = r(c * r(min(1 / norm, r(1 / c)))) + (norm - norm)
        grads = [g * scale for g in grads]
    return grads


def denominator(spec: RMSpropSpec, nu, mu, n: int):
    """``den`` of ``u = g / den`` from the updated mean square (and mean gradient) after ``n`` updates."""
    rho = spec.rounded("decay", spec.decay)
    eps = spec.rounded("eps", spec.eps)
    nu_hat, mu_hat = nu, mu
    if spec.bias_correction:
        correction = 1 - rho**n
        nu_hat = nu / correction
        mu_hat = None if mu is None else mu / correction
    if spec.effective_eps_placement == "outside":
        d = nu_hat if mu_hat is None else nu_hat - mu_hat * mu_hat
        return np.sqrt(d) + eps
    if mu_hat is None:
        return np.sqrt(nu_hat + eps)
    if spec.centered_order == "sub_then_eps":
        return np.sqrt((nu_hat - mu_hat * mu_hat) + eps)
    return np.sqrt((nu_hat + eps) - mu_hat * mu_hat)


def _rmsprop_direction(spec: RMSpropSpec, g, nu, mu, n: int):
    """v, m update and u = g / den for one tensor; returns (u, nu, mu)."""
    rho = spec.rounded("decay", spec.decay)
    nu = rho * nu + (1 - rho) * g * g
    if mu is not None:
        mu = rho * mu + (1 - rho) * g
    return g / denominator(spec, nu, mu, n), nu, mu


def update(
    spec: RMSpropSpec,
    state: RMSpropState,
    params: Tree,
    grads: Tree,
    lr: float | None = None,
) -> tuple[Tree, RMSpropState]:
    """One optimizer call: returns ``(new_params, new_state)``; inputs are not modified."""
    with np.errstate(all="ignore"):  # 0/0 and overflow give NaN/inf silently, as in the frameworks
        return _update(spec, state, params, grads, lr)


def _update(spec, state, params, grads, lr):
    ps, unflatten = _flatten(params)
    gs = _leaves(grads, ps, "gradient")
    lr_t = learning_rate(spec, state.count, lr)
    k = spec.accumulation_steps or 1

    if spec.maximize:
        gs = [-g for g in gs]
    if spec.loss_scale is not None:
        gs = [g / spec.loss_scale for g in gs]

    accumulator = state.accumulator
    apply_update = True
    if accumulator is not None:
        if (state.count + 1) % k != 0:  # Keras: accumulate, leave the variables alone
            accumulator = tuple(a + g for a, g in zip(accumulator, gs, strict=True))
            apply_update = False
        else:
            gs = [(g + a) / k for g, a in zip(gs, accumulator, strict=True)]
            accumulator = tuple(np.zeros_like(a) for a in accumulator)

    nu, mu, trace, updates = state.nu, state.mu, state.trace, state.updates
    if apply_update:
        updates += 1
        ps, nu, mu, trace = _apply(spec, ps, clip(spec, gs), nu, mu, trace, lr_t, updates)

    ema = state.ema
    if ema is not None:
        ps, ema = _ema(spec, ps, ema, state.count // k)
    new_state = RMSpropState(state.count + 1, updates, nu, mu, trace, accumulator, ema)
    return unflatten(ps), new_state


def _apply(spec, ps, gs, nu, mu, trace, lr_t, n):
    wd = spec.rounded("weight_decay", spec.weight_decay)
    mom = spec.rounded("momentum", spec.momentum)
    new_p, new_nu, new_mu, new_trace = [], [], [], []
    for i, (p, g) in enumerate(zip(ps, gs, strict=True)):
        if spec.weight_decay_mode == "coupled":
            g = g + wd * p
        elif spec.weight_decay_mode == "decoupled":
            p = p - p * wd * lr_t
        elif spec.weight_decay_mode == "multiplicative":
            p = p * spec.rounded("wd_factor", 1 - lr_t * wd)
        u, v_i, m_i = _rmsprop_direction(spec, g, nu[i], None if mu is None else mu[i], n)
        new_nu.append(v_i)
        new_mu.append(m_i)
        if trace is None:
            step = lr_t * u
        elif spec.lr_placement == "in_buffer":
            b = mom * trace[i] + lr_t * u
            step = lr_t * u + mom * b if spec.nesterov else b
            new_trace.append(b)
        else:
            b = mom * trace[i] + u
            step = lr_t * (u + mom * b) if spec.nesterov else lr_t * b
            new_trace.append(b)
        new_p.append(p - step)
    return (
        new_p,
        tuple(new_nu),
        None if mu is None else tuple(new_mu),
        None if trace is None else tuple(new_trace),
    )


def _ema(spec: RMSpropSpec, ps, ema, iterations: int):
    """Keras' parameter EMA; ``iterations`` is the counter before this call's increment."""
    e = spec.ema_momentum
    if spec.ema_start == "first_update" and iterations == 0:
        e = 0.0  # Keras 3: the average starts as a copy of the first updated value
    ema = tuple(e * a + (1 - e) * p for a, p in zip(ema, ps, strict=True))
    freq = spec.ema_overwrite_frequency
    if freq and (iterations + 1) % freq == 0:
        ps = [a.copy() for a in ema]
    return ps, ema


# ------------------------------------------------------------------- trajectory
def iterate_reference(
    spec: RMSpropSpec,
    params0: Tree,
    grads: Iterable[Tree],
    lrs: Iterable[float] | None = None,
) -> Iterator[tuple[Tree, RMSpropState]]:
    """Yield ``(params, state)`` after every step; memory O(parameters)."""
    state = init(spec, params0)
    params = params0
    lr_iter = iter(lrs) if lrs is not None else None
    for g in grads:
        lr = None
        if lr_iter is not None:
            try:
                lr = float(next(lr_iter))
            except StopIteration:
                raise InputValueError("lrs is shorter than the gradient stream") from None
        params, state = update(spec, state, params, g, lr)
        yield params, state


def run_reference(
    spec: RMSpropSpec,
    params0: Tree,
    grads: np.ndarray | Iterable[Tree],
    lrs: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray | dict[str, np.ndarray] | list[np.ndarray]:
    """Parameters after every step, float64, shape ``(T, *shape)`` per tensor.

    ``grads`` is an array ``(T, *shape)`` or any iterable of per-step gradients
    (arrays, or dicts/lists matching ``params0``); ``lrs[t]`` overrides the
    learning rate of step t (a schedule).
    """
    if isinstance(grads, np.ndarray):
        p0 = np.asarray(params0)
        if grads.shape[1:] != p0.shape:
            raise InputValueError(f"grads shape {grads.shape} is not (T, *{p0.shape})")
    leaves0, unflatten = _flatten(params0)
    steps = [_flatten(p)[0] for p, _ in iterate_reference(spec, params0, grads, lrs)]
    if not steps:
        return unflatten([np.empty((0, *x.shape)) for x in leaves0])
    return unflatten([np.stack([s[i] for s in steps]) for i in range(len(leaves0))])
