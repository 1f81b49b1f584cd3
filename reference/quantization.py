"""Block-wise 8-bit optimizer state: the error it adds, derived element by element.

bitsandbytes' 8-bit optimizers (`RMSprop8bit`, ``optim_bits=8``) keep ``v`` as one byte per element: each
block of 256 elements is divided by its largest magnitude (``absmax``, kept in float32) and the quotient
``y`` in [0, 1] is replaced by a value of the *dynamic* map (`dynamic_map`: 7 decades, 2^i values in the
i-th, finer near 1). Each step dequantizes ``v``, updates it in float32, updates the parameters with the
*new, unquantized* ``v`` and quantizes it again. So step t sees ``v'_t = rho*Q_{t-1} + (1-rho)*g_t^2``
where the exact recursion has ``rho*v_{t-1} + ...``.

The bound, per element, with ``D_t`` bounding ``|Q_t - v_t|`` (the stored state against the reference's)
and ``E_t`` bounding ``|p_t - p_ref_t|``:

* ``|v'_t - v_t| <= dv_t = rho*D_{t-1} + (1-rho)*(2|g'|*wd*E + (wd*E)^2)`` (coupled decay feeds the
  parameter error back into the gradient ``g' = g + wd*p``); ``v'_t >= (1-rho)*g'^2`` always;
* the step ``lr*g'/(sqrt(v') + eps)`` then differs from the reference's by at most the larger of the two
  ends of that interval: ``E_t = E_{t-1} + lr_t*du_t`` (no momentum: bitsandbytes' RMSprop has none);
* quantizing moves ``v'`` by at most ``absmax * gap(y)`` (`quantization_error`), so
  ``D_t = dv_t + absmax_hi * gap(y_hi)``, with the block's absmax taken at its largest possible value.

``gap(y)`` is the width of the map's interval around ``y`` (twice what rounding to the nearest value costs;
measured on bitsandbytes 0.50.2's CPU kernels: at most 0.61 of it above 1e-4, up to all of it just above the
floor; the bound takes 1.25 gaps, `MARGIN`), with a floor `FLOOR`: the
CPU kernel's binary search (BinSearch's ``Direct2``) resolves the map only down to about 2e-5 of the
absmax, and every smaller quotient is stored as 2.125e-5 (measured: no error above 2.12e-5*absmax there).
Tensors smaller than ``min_size`` keep a float32 state: their bound stays 0 and only rounding applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .errors import InputValueError
from .rmsprop import learning_rate
from .spec import RMSpropSpec

BLOCK = 256  # bitsandbytes' block size for 8-bit optimizer states
FLOOR = 2.66e-5  # of the absmax: below it the CPU kernel stores 2.125e-5 (module docstring); 1.25x that
MARGIN = 1.25  # on the map's gaps: y = v/absmax and absmax are themselves float32 roundings


def dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8) -> np.ndarray:
    """The sorted values of bitsandbytes' dynamic quantization map (``functional.create_dynamic_map``), to
    within a float32 ulp (torch's float32 linspace rounds differently): per decade i the midpoints of
    ``linspace(0.1, 1, 2^i + 1)`` times 10^(i-6) (signed: both signs), then 0 and 1."""
    data: list[float] = []
    non_sign = total_bits - 1
    for i in range(max_exponent_bits):
        items = 2 ** (i + non_sign - max_exponent_bits + (0 if signed else 1)) + 1
        bounds = np.linspace(0.1, 1, items, dtype=np.float32)
        means = ((bounds[:-1] + bounds[1:]) / np.float32(2.0)).astype(np.float32)
        scale = np.float32(10.0 ** (-(max_exponent_bits - 1) + i))
        data += (scale * means).astype(np.float32).tolist()
        if signed:
            data += (-(scale * means)).astype(np.float32).tolist()
    data += [0.0, 1.0]
    return np.sort(np.asarray(data, np.float64))


_CODE = dynamic_map()
_POSITIVE = _CODE[_CODE >= 0]
_GAPS = np.maximum.accumulate(np.diff(_POSITIVE))  # non-decreasing: a bound for every y below


def quantization_error(y: np.ndarray) -> np.ndarray:
    """Bound on ``|Q(y) - y|`` for quotients ``y`` in [0, 1] (in units of the block's absmax)."""
    index = np.clip(np.searchsorted(_POSITIVE, np.clip(y, 0.0, 1.0), side="right") - 1, 0, len(_GAPS) - 1)
    return np.maximum(MARGIN * _GAPS[index], FLOOR)


def _blocks(x: np.ndarray) -> np.ndarray:
    """Per element, the maximum of its 256-element block (blocks over the flattened tensor)."""
    flat = x.ravel()
    n = flat.size
    padded = np.concatenate([flat, np.full(-n % BLOCK, -np.inf)]).reshape(-1, BLOCK)
    return np.repeat(padded.max(axis=1), BLOCK)[:n].reshape(x.shape)


def state_error_bounds(spec: RMSpropSpec, grads: Iterable[Mapping[str, np.ndarray]],
                       params0: Mapping[str, np.ndarray], record: Iterable[int],
                       lrs: np.ndarray | None = None) -> dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """``{step: (E, D)}`` at the ``record`` steps: per tensor, the bounds on the parameters' and the stored
    state's deviation from the reference that ``spec.state_quantization`` adds (module docstring)."""
    if spec.state_quantization != "blockwise8":
        raise InputValueError(f"state_quantization={spec.state_quantization!r}: nothing to bound")
    if (spec.momentum or spec.centered or spec.effective_eps_placement != "outside" or spec.bias_correction
            or spec.clipvalue or spec.clipnorm or spec.global_clipnorm or spec.weight_decay_mode
            not in ("none", "coupled")):
        raise InputValueError("blockwise 8-bit state is bounded for bitsandbytes' RMSprop only (no momentum or "
                              "centering, eps outside, coupled weight decay)")
    rho, eps = spec.decay, spec.eps
    wd = spec.weight_decay if spec.weight_decay_mode == "coupled" else 0.0
    record = set(record)
    p = {n: np.asarray(a, np.float64).copy() for n, a in params0.items()}
    v = {n: np.zeros_like(a) for n, a in p.items()}
    D = {n: np.zeros_like(a) for n, a in p.items()}
    E = {n: np.zeros_like(a) for n, a in p.items()}
    out = {}
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads, start=1):
            lr = learning_rate(spec, t - 1, None if lrs is None else float(lrs[t - 1]))
            for n in p:
                gw = np.asarray(g[n], np.float64) + wd * p[n]
                ge = wd * E[n]  # how far the framework's g' can be from the reference's
                v_new = rho * v[n] + (1 - rho) * gw * gw
                dv = rho * D[n] + (1 - rho) * (2 * np.abs(gw) * ge + ge * ge)
                lo = np.maximum(v_new - dv, (1 - rho) * np.maximum(np.abs(gw) - ge, 0.0) ** 2)
                hi = v_new + dv
                den, den_lo, den_hi = np.sqrt(v_new) + eps, np.sqrt(lo) + eps, np.sqrt(hi) + eps
                a = np.abs(gw)
                du = np.maximum((a + ge) / den_lo - a / den, a / den - np.maximum(a - ge, 0.0) / den_hi)
                E[n] = E[n] + lr * np.where(np.isfinite(du), du, np.inf)
                p[n] = p[n] - lr * gw / den
                v[n] = v_new
                if v_new.size >= spec.state_quantization_min_size:
                    absmax_lo, absmax_hi = _blocks(lo), _blocks(hi)
                    y_hi = np.where(absmax_lo > 0, hi / absmax_lo, 1.0)
                    D[n] = dv + absmax_hi * quantization_error(y_hi)
                else:
                    D[n] = dv
            if t in record:
                out[t] = ({n: e.copy() for n, e in E.items()}, {n: d.copy() for n, d in D.items()})
    return out


__all__ = ["BLOCK", "FLOOR", "MARGIN", "dynamic_map", "quantization_error", "state_error_bounds"]
