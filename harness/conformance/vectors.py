"""Portable golden vectors: a suite's cases as explicit inputs and expected outputs, for any language.

Like ONNX's backend test cases, a vector states everything (initial parameters, a non-initial
optimizer state, every gradient and lr) and the expected parameters and state after each step;
like NumPy's umath validation sets, values are exact (C99 hex floats, ``%a``) and every value has its
own tolerance. One vector per preset x case x dtype, in three files with the same content:

* ``<preset>/<case>.<dtype>.json``: the schema of docs/vectors.md, numbers as hex-float strings;
* ``<preset>/<case>.<dtype>.npz``: the same arrays as float64 (exact values of the dtype);
* ``<preset>/<case>.<dtype>.txt``: a whitespace-separated token stream for C/Fortran (``strtod`` reads it).

The reference warms up ``warmup`` steps from the case's start (so nu, mu and the momentum buffer are
not at their initial values), the state and parameters are rounded to the dtype, and the float64
reference continues ``steps`` steps from exactly that start. A value's tolerance is the run's
rounding tolerance (`reference.budget`) times ``u`` times its budget scale ``B_t`` from that start,
as `rmsprop-harness run` judges; tensors are cut to their first ``elements`` values (the vector
defines its own problem: a global norm is the norm of what the vector holds).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.adapters import ADAPTERS
from harness.base.runfolder import prepare_output, write_atomic
from harness.base.streams import cast
from harness.conformance.cases import Case
from harness.conformance.metrics import ulp
from harness.conformance.suite import load_suite
from reference import implementations, presets
from reference.budget import UNIT_ROUNDOFF, run_tolerance, state_tolerance
from reference.errors import InputValueError
from reference.rmsprop import init, update
from reference.trajectory import STATE_KINDS, trajectory
from reference.translate import Unsupported, native_args

FORMAT = "rmsprop-harness vectors 1"
DTYPES = ("float32", "float64")


class VectorError(InputValueError):
    """Bad vectors or results (a missing file, another format, a malformed value); one line."""


class NoVector(Exception):
    """A case that has no vector in a preset's semantics (why: the message)."""


def hexf(x: float) -> str:
    """A float as C99 ``%a`` text (``nan``, ``inf`` and ``-inf`` as strtod reads them)."""
    x = float(x)
    return ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")) if not math.isfinite(x) else x.hex()


def unhex(text: Any) -> float:
    if not isinstance(text, str):
        raise VectorError(f"{text!r} is not a hex-float string")
    try:
        return float(text) if text.lstrip("+-").lower() in ("nan", "inf", "infinity") else float.fromhex(text)
    except ValueError:
        raise VectorError(f"{text!r} is not a hex float") from None


def hexes(a: np.ndarray) -> list:
    return [hexes(x) for x in a] if np.ndim(a) > 1 else [hexf(x) for x in np.asarray(a).ravel()]


def families(preset: str) -> list[str]:
    """The argument tables of a case that address ``preset`` (its name and its adapters' families)."""
    return [preset, *sorted({i.family for i in ADAPTERS.builtin().values() if i.preset == preset} - {preset})]


def case_arguments(case: Case, preset: str) -> dict[str, Any]:
    """The case's native arguments for ``preset``; `Unsupported` where the case cannot be expressed in them,
    `NoVector` where it addresses other frameworks only."""
    for key in families(preset):
        if key in case.unsupported:
            raise case.unsupported[key]
    if case.spec is not None:
        return native_args(preset, case.spec)
    if case.args is None:
        return dict(presets.REQUIRED_DEFAULTS.get(preset, {}))
    for key in families(preset):
        if key in case.args:
            return dict(case.args[key])
    raise NoVector(f"no arguments for {preset} (the case addresses {', '.join(sorted(case.args))})")


@dataclass(frozen=True)
class Vector:
    """One vector in memory: float64 arrays of exact dtype values, and what they mean."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]  # "inputs/params/<n>", "inputs/state/<kind>/<n>", "inputs/grads/<n>", ...

    @property
    def id(self) -> str:
        return f"{self.meta['preset']}/{self.meta['case']}/{self.meta['dtype']}"


def build(case: Case, preset: str, dtype: str, *, warmup: int, steps: int, elements: int, suite: str) -> Vector:
    """The vector of one case in ``preset``'s semantics (`Unsupported` when it has none)."""
    args = case_arguments(case, preset)
    spec = presets.get(preset)(**args)
    if spec.accumulation_steps or spec.ema_momentum is not None:
        raise NoVector("gradient accumulation or an EMA of the parameters: state beyond nu, mu and the momentum buffer")
    total = min(case.steps, warmup + steps)
    warmup = min(warmup, total - 1)
    names = list(case.shapes)
    cut = {n: min(elements, math.prod(case.shapes[n])) for n in names}
    if spec.state_quantization != "none" and max(cut.values()) >= spec.state_quantization_min_size:
        raise NoVector(f"{spec.state_quantization} state on tensors of {max(cut.values())} values: its error bound "
                       "(reference.quantization) is derived from the initial state only")
    p0 = {n: cast(np.asarray(v, np.float64).ravel()[:cut[n]], dtype) for n, v in case.params0().items()}
    grads = [{n: np.asarray(g[n], np.float64).ravel()[:cut[n]] for n in names}
             for g in case.gradient_stream().steps(total, dtype)]
    lrs_all = case.lrs()
    params, opt = dict(p0), init(spec, p0)
    for t in range(warmup):  # the warm-up: a start that is not the initial state
        params, opt = update(spec, opt, params, grads[t], None if lrs_all is None else float(lrs_all[t]))
    params = {n: cast(params[n], dtype) for n in names}
    kinds = [k for k in STATE_KINDS if getattr(opt, k) is not None]
    state0 = opt._replace(**{k: tuple(cast(x, dtype) for x in getattr(opt, k)) for k in kinds})
    rest = grads[warmup:total]
    lrs = None if lrs_all is None else np.asarray(lrs_all[warmup:total], np.float64)
    n = len(rest)
    points = trajectory(spec, rest, params, range(1, n + 1), lrs, state0=state0)
    u = UNIT_ROUNDOFF[dtype]
    arrays: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        arrays[f"inputs/params/{name}"] = params[name]
        for k in kinds:
            arrays[f"inputs/state/{k}/{name}"] = np.asarray(getattr(state0, k)[i], np.float64)
        arrays[f"inputs/grads/{name}"] = np.stack([g[name] for g in rest])
        arrays[f"expected/params/{name}"] = np.stack([points[t].params[name] for t in range(1, n + 1)])
        arrays[f"tolerance/params/{name}"] = np.stack([
            run_tolerance(spec, warmup + t, dtype) * u * points[t].params_scale[name] for t in range(1, n + 1)])
        for k in kinds:
            arrays[f"expected/state/{k}/{name}"] = np.stack([points[t].state[k][name] for t in range(1, n + 1)])
            arrays[f"tolerance/state/{k}/{name}"] = np.stack([
                state_tolerance(spec, warmup + t, dtype, k) * u * points[t].state_scale[k][name]
                for t in range(1, n + 1)])
    for key in [k for k in arrays if k.startswith("tolerance/")]:  # the same tolerance in ulps of the dtype (per row)
        with np.errstate(all="ignore"):
            rest = key[len("tolerance/"):]
            arrays[f"tolerance_ulp/{rest}"] = arrays[key] / ulp(arrays[f"expected/{rest}"], dtype)
    if lrs is None:  # the lr each step uses (the spec's own schedule, if any, included)
        from reference.rmsprop import learning_rate

        lrs = np.asarray([learning_rate(spec, warmup + t, None) for t in range(n)], np.float64)
    arrays["inputs/lr"] = lrs
    record = implementations.get(preset)
    full = native_args(preset, spec) if preset != "spec" else {}
    meta = {"format": FORMAT, "suite": suite, "case": case.name, "description": case.description, "preset": preset,
            "call": record.call, "dtype": dtype, "arguments": args, "arguments_full": full,
            "semantics": spec.knobs(), "start_step": warmup, "steps": n, "tensors": {k: cut[k] for k in names},
            "state": kinds, "stream": case.stream.label(), "seed": case.seed}
    return Vector(meta, arrays)


def export(out: str | Path, *, presets_: list[str], suite: str = "default", cases: list[str] | None = None,
           dtypes: tuple[str, ...] = DTYPES, warmup: int = 8, steps: int = 16, elements: int = 64
           ) -> tuple[list[Path], list[str]]:
    """Write every vector of ``presets_`` x the suite's cases x ``dtypes`` under ``out``; (files, skipped lines)."""
    import fnmatch

    for p in presets_:
        implementations.get(p)  # an unknown preset: one line naming the known ones
    for d in dtypes:
        if d not in DTYPES:
            raise VectorError(f"dtype {d!r}: vectors are float32 or float64")
    loaded = load_suite(suite)
    chosen = [c for c in loaded.cases if not cases or any(fnmatch.fnmatchcase(c.name, pat) for pat in cases)]
    if not chosen:
        raise VectorError(f"no case of suite {loaded.name!r} matches {', '.join(cases or [])} (cases: "
                          f"{', '.join(c.name for c in loaded.cases)})")
    root = Path(out)
    if not _earlier_vectors(root):  # an earlier export is replaced; anything else must be new or empty
        root = prepare_output(out)
    written, skipped = [], []
    for preset in presets_:
        for case in chosen:
            for dtype in dtypes:
                try:
                    vector = build(case, preset, dtype, warmup=warmup, steps=steps, elements=elements,
                                   suite=loaded.name)
                except (Unsupported, NoVector) as exc:
                    skipped.append(f"{preset}/{case.name}: {exc}")
                    break
                written += write(vector, root / preset)
    if not written:
        raise VectorError(f"no vector: {'; '.join(skipped)}")
    index = json.dumps({"format": FORMAT, "suite": loaded.name, "skipped": skipped,
                        "vectors": sorted(str(p.relative_to(root)) for p in written if p.name.endswith(".json"))},
                       indent=1)
    write_atomic(root / "index.json", lambda tmp: tmp.write_text(index))
    return written, skipped


def _earlier_vectors(root: Path) -> bool:
    index = root / "index.json"
    if root.is_symlink() or index.is_symlink() or not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write(vector: Vector, folder: Path) -> list[Path]:
    if folder.is_symlink():
        raise VectorError(f"{folder} is a symbolic link: not followed")
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{vector.meta['case']}.{vector.meta['dtype']}"
    body = {**vector.meta, "inputs": {}, "expected": {}, "tolerance": {}, "tolerance_ulp": {}}
    for key, a in vector.arrays.items():
        node = body
        *path, leaf = key.split("/")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = hexes(a) if a.ndim else hexf(a)
    paths = [Path(f"{stem}{suffix}") for suffix in (".json", ".npz", ".txt")]
    text = json.dumps(body, indent=None)
    write_atomic(paths[0], lambda tmp: tmp.write_text(text))  # atomic, and a planted symlink is refused

    def savez(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.savez would append .npz to a path
            np.savez(f, **vector.arrays)

    write_atomic(paths[1], savez)
    tokens = text_tokens(vector)
    write_atomic(paths[2], lambda tmp: tmp.write_text(tokens))
    return paths


def text_tokens(vector: Vector) -> str:
    """The C reader's format (docs/vectors.md): a header, the full arguments, the start, then per step its lr and
    gradients. Booleans are 0/1, every number a hex float."""
    m, a = vector.meta, vector.arrays
    lines = [FORMAT.replace(" ", "-"), f"id {vector.id}", f"dtype {m['dtype']}", f"args {len(m['arguments_full'])}"]
    for k, v in m["arguments_full"].items():
        value = float(v) if isinstance(v, bool | int | float) and v is not None else math.nan
        lines.append(f"{k} {hexf(value)}")
    lines.append(f"tensors {len(m['tensors'])}")
    lines += [f"{n} {size}" for n, size in m["tensors"].items()]
    lines.append(f"state {len(m['state'])} {' '.join(m['state'])}")
    for n in m["tensors"]:
        lines.append(f"param {n} " + " ".join(hexes(a[f'inputs/params/{n}'])))
        for k in m["state"]:
            lines.append(f"{k} {n} " + " ".join(hexes(a[f'inputs/state/{k}/{n}'])))
    lines.append(f"steps {m['steps']}")
    for t in range(m["steps"]):
        lines.append(f"lr {hexf(a['inputs/lr'][t])}")
        lines += [f"grad {n} " + " ".join(hexes(a[f'inputs/grads/{n}'][t])) for n in m["tensors"]]
    return "\n".join(lines) + "\n"


__all__ = ["DTYPES", "FORMAT", "NoVector", "Vector", "VectorError", "build", "case_arguments", "export", "hexf",
           "unhex"]
