"""Seeded, counter-based gradient streams: step t of any stream can be made on its own.

Every adapter and the reference consume the *same bits*: a stream produces float64
values, `cast` rounds them once to the run dtype, and both sides use the rounded
values (the framework as its own dtype, the reference as the float64 numbers that
dtype represents exactly). Values come from NumPy's Philox generator keyed by
``(seed, tensor)`` with the step in the counter, so

* step t does not depend on steps < t: generation is chunked and a stream is never
  held in memory as a whole (``chunks``);
* a worker process regenerates exactly what the driver generates;
* adding a tensor does not change the others (the key uses a hash of the name).

Kinds and their options (every kind also takes ``seed``):

============  ================================================================
gaussian      ``scale`` (1.0): N(0, scale^2)
lognormal     ``scale`` (1.0), ``sigma`` (2.0): random sign * scale * exp(sigma*N):
              heavy-tailed magnitudes
mixed_scale   ``low`` (-4), ``high`` (2): coordinate i has a fixed scale
              10^x, x uniform in [low, high]: steep in some directions, flat in others
sparse        ``zero_fraction`` (0.9), ``scale`` (1.0): gaussian with that fraction
              of exact zeros (a new pattern every step)
zeros         all exact zeros
tiny          ``scale`` (1e-30): gaussian whose square underflows float32
huge          ``scale`` (1e20): gaussian whose square overflows float32
alternating   ``scale`` (1.0): a fixed gaussian vector whose sign flips every step
constant      ``value`` (none): every element equals ``value``; without it, a fixed
              gaussian vector times ``scale`` (1.0)
nonfinite     ``scale`` (1.0), ``at_steps`` ([5]), ``value`` ("nan"|"inf"|"-inf"),
              ``fraction`` (0.01): gaussian, with that fraction of elements (at least
              one per tensor) replaced by ``value`` at the 1-based steps listed
recorded      ``path``: replay gradients from an ``.npz`` file (layout below)
============  ================================================================

Recordings (``.npz``) are read by `harness.base.recordings`; dtypes by `harness.base.dtypes`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.base.dtypes import DTYPES, cast, native, to_bfloat16_bits
from harness.base.recordings import Recording, StreamError, record

Shapes = dict[str, tuple[int, ...]]

#: kind -> {option: default}; the suite loader validates against this table.
KINDS: dict[str, dict[str, Any]] = {
    "gaussian": {"scale": 1.0},
    "lognormal": {"scale": 1.0, "sigma": 2.0},
    "mixed_scale": {"low": -4.0, "high": 2.0},
    "sparse": {"zero_fraction": 0.9, "scale": 1.0},
    "zeros": {},
    "tiny": {"scale": 1e-30},
    "huge": {"scale": 1e20},
    "alternating": {"scale": 1.0},
    "constant": {"value": None, "scale": 1.0},
    "nonfinite": {"scale": 1.0, "at_steps": [5], "value": "nan", "fraction": 0.01},
    "recorded": {"path": None},
    "arrays": {"grads": None, "params": None},  # in-memory (Python API and tests), not in suites
}

CHUNK_BYTES = 64 << 20  # float64 gradient values generated or read at a time

# Philox counter word 3 separates independent uses of one (seed, tensor) key.
_GRAD, _FIXED, _INIT, _MASK = 0, 1, 2, 3


@dataclass(frozen=True)
class StreamSpec:
    """What a stream is; picklable, so workers rebuild the identical stream."""

    kind: str = "gaussian"
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise StreamError(f"unknown stream kind {self.kind!r}; known: {', '.join(KINDS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise StreamError(f"seed={self.seed!r} is invalid: allowed an integer in [0, 2^63)")
        unknown = sorted(set(self.options) - set(KINDS[self.kind]))
        if unknown:
            allowed = ", ".join(KINDS[self.kind]) or "none"
            raise StreamError(f"stream kind {self.kind!r} has no option {unknown[0]!r} (allowed: {allowed})")
        _validate(self.kind, {**KINDS[self.kind], **self.options})

    def option(self, name: str) -> Any:
        return self.options.get(name, KINDS[self.kind][name])

    def label(self) -> str:
        """A short human label, e.g. ``lognormal(sigma=3)``."""
        shown = {k: v for k, v in self.options.items() if k not in ("grads", "params")}
        if self.kind == "recorded":
            shown = {"path": Path(str(self.options.get("path"))).name}
        args = ",".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.kind}({args})" if args else self.kind


def _validate(kind: str, o: dict[str, Any]) -> None:
    def number(name: str, low: float = -math.inf, high: float = math.inf, strict_low: bool = False) -> None:
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise StreamError(f"{name}={v!r} is invalid: allowed a finite number")
        if v < low or v > high or (strict_low and v == low):
            raise StreamError(f"{name}={v!r} is invalid: allowed range {'(' if strict_low else '['}{low:g}, "
                              f"{high:g}]")

    if "scale" in o:
        number("scale", 0.0, strict_low=True)
    if kind == "lognormal":
        number("sigma", 0.0)
    if kind == "mixed_scale":
        number("low", -300, 300)
        number("high", -300, 300)
        if o["low"] > o["high"]:
            raise StreamError(f"low={o['low']!r} is above high={o['high']!r}")
    if kind == "sparse":
        number("zero_fraction", 0.0, 1.0)
    if kind == "constant" and o["value"] is not None:
        number("value")
    if kind == "nonfinite":
        number("fraction", 0.0, 1.0)
        if o["value"] not in ("nan", "inf", "-inf"):
            raise StreamError(f"value={o['value']!r} is invalid: allowed 'nan', 'inf' or '-inf'")
        steps = o["at_steps"]
        if not isinstance(steps, list | tuple) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps):
            raise StreamError(f"at_steps={steps!r} is invalid: allowed a list of 1-based step numbers")
    if kind == "recorded" and not isinstance(o["path"], str | Path):
        raise StreamError("a recorded stream needs path = '<file>.npz'")
    if kind == "arrays" and not isinstance(o["grads"], Mapping):
        raise StreamError("an arrays stream needs grads = {name: array (T, *shape)}")


# ------------------------------------------------------------------ generation
def _tensor_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def _rng(seed: int, name: str, step: int, domain: int) -> np.random.Generator:
    """An independent generator for (seed, tensor, step, domain): counter-based, no state carried."""
    return np.random.Generator(np.random.Philox(key=[seed, _tensor_key(name)], counter=[0, 0, step, domain]))


class GradientStream:
    """The gradients of one case: ``step(t)`` for any 1-based t, or ``chunks`` in order."""

    def __init__(self, spec: StreamSpec, shapes: Shapes | None = None, gain: float = 1.0):
        self.spec = spec
        self.gain = float(gain)  # every value times this (a parity scale sweep), before rounding to a dtype
        self._recording: Recording | None = None
        if spec.kind == "recorded":
            self._recording = Recording(Path(spec.option("path")))
            file_shapes = self._recording.shapes
            if shapes is not None and dict(shapes) != file_shapes:
                raise StreamError(f"{self._recording.path}: shapes {file_shapes} do not match the case's "
                                  f"{dict(shapes)}")
            shapes = file_shapes
        elif spec.kind == "arrays":
            grads = spec.option("grads")
            if any(np.iscomplexobj(a) for a in grads.values()):
                raise StreamError("complex gradients are not modelled (see reference.rmsprop: pass the real view)")
            arrays = {n: np.asarray(a, np.float64) for n, a in grads.items()}
            shapes = {n: a.shape[1:] for n, a in arrays.items()}
            self._arrays = arrays
        if not shapes:
            raise StreamError("a stream needs parameter shapes")
        self.shapes: Shapes = {n: tuple(int(d) for d in s) for n, s in shapes.items()}
        self._fixed: dict[str, np.ndarray] = {}

    @property
    def length(self) -> int | None:
        """Steps available (recorded and in-memory streams), None when unbounded."""
        if self._recording is not None:
            return self._recording.steps
        if self.spec.kind == "arrays":
            return min(len(a) for a in self._arrays.values())
        return None

    def _fixed_vector(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self._fixed:
            rng = _rng(self.spec.seed, name, 0, _FIXED)
            if self.spec.kind == "mixed_scale":
                low, high = self.spec.option("low"), self.spec.option("high")
                self._fixed[name] = 10.0 ** rng.uniform(low, high, size=shape)
            else:
                self._fixed[name] = rng.standard_normal(size=shape) * self.spec.option("scale")
        return self._fixed[name]

    def _generate(self, name: str, shape: tuple[int, ...], t: int) -> np.ndarray:
        kind, opt = self.spec.kind, self.spec.option
        if kind == "zeros":
            return np.zeros(shape)
        if kind == "constant" and opt("value") is not None:
            return np.full(shape, float(opt("value")))
        if kind in ("constant", "alternating"):
            sign = -1.0 if kind == "alternating" and t % 2 == 0 else 1.0
            return sign * self._fixed_vector(name, shape)
        rng = _rng(self.spec.seed, name, t, _GRAD)
        z = rng.standard_normal(size=shape)
        if kind == "lognormal":
            return opt("scale") * np.sign(z) * np.exp(opt("sigma") * rng.standard_normal(size=shape))
        if kind == "mixed_scale":
            return z * self._fixed_vector(name, shape)
        if kind == "sparse":
            keep = rng.random(size=shape) >= opt("zero_fraction")
            return np.where(keep, z * opt("scale"), 0.0)
        g = z * opt("scale")  # gaussian, tiny, huge, nonfinite
        if kind == "nonfinite" and t in opt("at_steps"):
            flat = g.reshape(-1)
            count = max(1, round(opt("fraction") * flat.size)) if flat.size else 0
            where = _rng(self.spec.seed, name, t, _MASK).choice(flat.size, size=count, replace=False)
            flat[where] = float(opt("value"))
        return g

    def step(self, t: int) -> dict[str, np.ndarray]:
        """The float64 gradients of 1-based step ``t``."""
        if t < 1:
            raise StreamError(f"steps are 1-based, got {t}")
        if self._recording is not None:
            out = {n: a[0] for n, a in self._recording.read(t - 1, t).items()}
        elif self.spec.kind == "arrays":
            out = {n: a[t - 1] for n, a in self._arrays.items()}
        else:
            out = {n: self._generate(n, s, t) for n, s in self.shapes.items()}
        return self._scaled(out)

    def _scaled(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.gain == 1.0:
            return arrays
        with np.errstate(over="ignore"):
            return {n: a * self.gain for n, a in arrays.items()}

    def chunk_steps(self) -> int:
        """Steps per chunk: 64, fewer for large tensors (at most `CHUNK_BYTES` of float64 values)."""
        row = 8 * sum(math.prod(s) for s in self.shapes.values())
        return max(1, min(64, CHUNK_BYTES // max(row, 1)))

    def chunks(self, stop: int, start: int = 1, size: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Float64 arrays ``(n, *shape)`` per tensor for steps ``start..stop``, ``size`` steps at a time
        (default `chunk_steps`)."""
        if self.length is not None and stop > self.length:
            raise StreamError(f"the stream has {self.length} steps, {stop} were asked for")
        size = size or self.chunk_steps()
        for a in range(start, stop + 1, size):
            b = min(a + size, stop + 1)
            if self._recording is not None:
                yield self._scaled(self._recording.read(a - 1, b - 1))
            else:
                steps = [self.step(t) for t in range(a, b)]  # already scaled
                yield {n: np.stack([s[n] for s in steps]) for n in self.shapes}

    def steps(self, stop: int, dtype: str = "float64", as_native: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Per-step gradients rounded to ``dtype``, generated chunk by chunk: float64 values
        (`cast`, for the reference) or arrays a framework converts exactly (`native`).

        A stream small enough (`CACHE_BYTES`) is generated once per process and kept: the tasks of a
        worker and the references of a run replay the same streams in every dtype, and generating
        them (a Philox generator per tensor and step) cost more than the reference itself. The values
        are the same either way: rounding is elementwise."""
        convert = native if as_native else cast
        whole = _CACHE.get(self, stop)
        if whole is not None:
            for i in range(stop):
                yield {n: convert(a[i], dtype) for n, a in whole.items()}
            return
        for chunk in self.chunks(stop):
            chunk = {n: convert(a, dtype) for n, a in chunk.items()}
            for i in range(len(next(iter(chunk.values())))):
                yield {n: a[i] for n, a in chunk.items()}

    def cache_key(self, stop: int) -> tuple | None:
        """What identifies this stream's first ``stop`` steps (None: not cached, an in-memory stream)."""
        if self.spec.kind == "arrays":
            return None
        options = json.dumps(dict(self.spec.options), sort_keys=True, default=str)
        return (self.spec.kind, self.spec.seed, options, tuple(sorted(self.shapes.items())), self.gain, stop)

    def recorded_params(self) -> dict[str, np.ndarray] | None:
        """Initial parameters stored with a recording (``params/<name>``), if any."""
        if self._recording is not None:
            return self._recording.params()
        if self.spec.kind == "arrays" and self.spec.option("params") is not None:
            return {n: np.asarray(a, np.float64) for n, a in self.spec.option("params").items()}
        return None


class _StreamCache:
    """Whole float64 streams, least recently used first, within `CACHE_BYTES` (one per process)."""

    def __init__(self, budget: int):
        self.budget, self.used = budget, 0
        self.items: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, stream: GradientStream, stop: int) -> dict[str, np.ndarray] | None:
        key = stream.cache_key(stop)
        size = 8 * stop * sum(math.prod(s) for s in stream.shapes.values())
        if key is None or size > self.budget // 4:
            return None
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        whole: dict[str, list[np.ndarray]] = {n: [] for n in stream.shapes}
        for chunk in stream.chunks(stop):
            for n, a in chunk.items():
                whole[n].append(a)
        arrays = {n: np.concatenate(parts) for n, parts in whole.items()}
        with self.lock:
            self.items[key] = arrays
            self.used += size
            while self.used > self.budget and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.used -= sum(a.nbytes for a in old.values())
        return arrays


CACHE_BYTES = 512 << 20
_CACHE = _StreamCache(CACHE_BYTES)


def initial_params(shapes: Shapes, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Seeded N(0, scale^2) initial parameters, independent of the gradient stream."""
    return {n: _rng(seed, n, 0, _INIT).standard_normal(size=s) * scale for n, s in shapes.items()}


__all__ = ["CACHE_BYTES", "DTYPES", "KINDS", "GradientStream", "Shapes", "StreamError", "StreamSpec", "cast",
           "initial_params", "native", "record", "to_bfloat16_bits"]
