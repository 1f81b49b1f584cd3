"""Checking another implementation's outputs against exported golden vectors (`harness.conformance.vectors`).

Results come as JSON (``{"implementation": NAME, "vectors": {ID: {"params": {tensor: [[value, ...] per step]},
"state": {kind: {tensor: [[...]]}}}}}``, values hex-float strings or JSON numbers) or as ``.npz`` (members
``ID/params/<tensor>`` and ``ID/state/<kind>/<tensor>``, shape (steps, elements)). Every value is judged
against its own tolerance; a vector without results is ``missing`` and a vector whose results do not fit
its shape is ``error``: neither is ever ok. The verdicts and their diagnosis read as `rmsprop-harness run`'s
(`harness.conformance.verdict`): the first quantity out of tolerance at the first failing step, the optimizer
state before the parameters, and what that points at.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.conformance.metrics import ulp
from harness.conformance.vectors import FORMAT, Vector, VectorError, unhex
from harness.conformance.verdict import DIAGNOSIS
from reference.trajectory import STATE_KINDS


def load_vectors(folder: str | Path) -> list[Vector]:
    """Every vector under ``folder`` (from its ``.npz`` and the metadata of its ``.json``)."""
    root = Path(folder)
    index = root / "index.json"
    if not index.is_file():
        raise VectorError(f"{root}: no index.json (export vectors with: rmsprop-harness vectors export ...)")
    try:
        listing = json.loads(index.read_text())
    except (OSError, ValueError) as exc:
        raise VectorError(f"{index}: not readable JSON ({exc})") from None
    if listing.get("format") != FORMAT:
        raise VectorError(f"{index}: format {listing.get('format')!r}, expected {FORMAT!r}")
    out = []
    for rel in listing.get("vectors", []):
        path = root / str(rel)
        inside = [root / Path(*Path(str(rel)).parts[:i]) for i in range(1, len(Path(str(rel)).parts) + 1)]
        if ".." in Path(str(rel)).parts or Path(str(rel)).is_absolute() or any(p.is_symlink() for p in inside):
            raise VectorError(f"{index}: {rel} is outside the folder or a symbolic link: not followed")
        try:
            meta = {k: v for k, v in json.loads(path.read_text()).items()
                    if k not in ("inputs", "expected", "tolerance", "tolerance_ulp")}
            with np.load(Path(str(path)[:-len(".json")] + ".npz"), allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k], np.float64) for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise VectorError(f"{path}: not a readable vector ({exc})") from None
        out.append(Vector(meta, arrays))
    return out


def load_results(path: str | Path) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """(implementation name, {vector id: {"params/<t>" or "state/<kind>/<t>": (steps, n) array}})."""
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"{path}: no such results file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                flat = {k: np.asarray(z[k], np.float64) for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise VectorError(f"{path}: not a readable .npz ({exc})") from None
        out: dict[str, dict[str, np.ndarray]] = {}
        for key, a in flat.items():
            parts = key.split("/")
            kind = next((i for i, p in enumerate(parts) if p in ("params", "state")), None)
            if kind is None or kind == 0:
                raise VectorError(f"{path}: member {key!r} is not <id>/params/<tensor> or <id>/state/<kind>/<tensor>")
            out.setdefault("/".join(parts[:kind]), {})["/".join(parts[kind:])] = a
        return path.stem, out
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VectorError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("vectors"), dict):
        raise VectorError(f"{path}: expected {{\"implementation\": ..., \"vectors\": {{id: {{\"params\": ...}}}}}}")
    out = {}
    for vid, entry in body["vectors"].items():
        if not isinstance(entry, dict):
            raise VectorError(f"{path}: vector {vid!r} is not an object")
        arrays = {f"params/{t}": _values(v, f"{vid} params {t}") for t, v in (entry.get("params") or {}).items()}
        for kind, tensors in (entry.get("state") or {}).items():
            arrays.update({f"state/{kind}/{t}": _values(v, f"{vid} state {kind} {t}") for t, v in tensors.items()})
        out[vid] = arrays
    return str(body.get("implementation") or path.stem), out


def _values(rows: Any, what: str) -> np.ndarray:
    try:
        return np.array([[unhex(x) if isinstance(x, str) else float(x) for x in row] for row in rows], np.float64)
    except (TypeError, ValueError) as exc:
        raise VectorError(f"{what}: not a list of steps of numbers ({exc})") from None


def _ratio(x: np.ndarray, e: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """|x - e| / tol elementwise; 0 where both are the same non-finite value, inf where one side only is."""
    with np.errstate(all="ignore"):
        err = np.abs(x - e)
        same = (np.isnan(x) & np.isnan(e)) | (np.isinf(x) & (x == e))
        err = np.where(same, 0.0, np.where(np.isfinite(x) & np.isfinite(e), err, np.inf))
        return np.where(err == 0, 0.0, err / tol)


def judge(vector: Vector, got: dict[str, np.ndarray] | None, implementation: str) -> dict[str, Any]:
    """One summary row: status, reason and the figures (worst share of the tolerance, max ulp)."""
    m = vector.meta
    row = {"suite": m["suite"], "case": m["case"], "adapter": implementation, "preset": m["preset"],
           "device": "cpu", "dtype": m["dtype"], "id": vector.id, "tolerance_used": math.nan, "max_ulp": math.nan}
    if not got:
        return {**row, "status": "missing", "reason": "no results for this vector"}
    steps, start = m["steps"], m["start_step"]
    quantities = [(f"state/{k}", f"state {k}", k) for k in m["state"] if any(f"state/{k}/" in key for key in got)]
    quantities.append(("params", "parameters", "parameters"))
    used, worst_ulp, first = 0.0, 0.0, None
    for t in range(steps):
        for prefix, what, kind in quantities:
            ratios, errs = [], []
            for name, size in m["tensors"].items():
                key = f"{prefix}/{name}"
                if key not in got:
                    return {**row, "status": "error", "reason": f"no {what} of tensor {name!r}"}
                if got[key].shape != (steps, size):
                    return {**row, "status": "error", "reason": f"{what} of {name!r} has shape {got[key].shape}, "
                                                                 f"expected ({steps}, {size})"}
                x, e = got[key][t], vector.arrays[f"expected/{key}"][t]
                ratios.append(_ratio(x, e, vector.arrays[f"tolerance/{key}"][t]))
                errs.append(np.abs(x - e))
                if kind == "parameters":
                    with np.errstate(all="ignore"):
                        worst_ulp = max(worst_ulp, float(np.nanmax(np.abs(x - e) / ulp(e, m["dtype"]), initial=0)))
            r = np.concatenate(ratios)
            used = max(used, float(r.max(initial=0)))
            if first is None and r.max(initial=0) > 1:
                err = np.concatenate(errs)
                bad = int((r > 1).sum())
                states = [k for k in quantities if k[2] != "parameters"]
                why = (DIAGNOSIS[kind] if kind != "parameters" or states else
                       "no optimizer state in the results, so the accumulator cannot be told from the update rule")
                first = (f"{what}: {float(r.max()):.3g} tolerances at step {start + t + 1} ({bad} of {r.size} values "
                         f"beyond their tolerance, max abs err {float(np.nanmax(err, initial=0)):.3g}); {why}")
    row.update(tolerance_used=used, max_ulp=worst_ulp)
    if first is not None:
        return {**row, "status": "fail", "reason": first}
    return {**row, "status": "ok", "reason": f"within {used:.1%} of the tolerance (max {worst_ulp:.3g} ulp)"}


def check(folder: str | Path, results: str | Path) -> pd.DataFrame:
    """One summary row per vector of ``folder``; results for vectors that are not there are an error."""
    vectors = load_vectors(folder)
    name, got = load_results(results)
    known = {v.id for v in vectors}
    extra = sorted(set(got) - known)
    if extra:
        raise VectorError(f"{results}: results for vectors that {folder} does not have: {', '.join(extra[:5])}")
    return pd.DataFrame([judge(v, got.get(v.id), name) for v in vectors])


__all__ = ["STATE_KINDS", "check", "judge", "load_results", "load_vectors"]
