"""Recorded gradients: the ``.npz`` layout, a chunked reader that never loads a whole array, and `record`.

Recorded layout (`np.savez` or `np.savez_compressed`, C order)::

    grads/<name>    (T, *shape)  the gradient of tensor <name> at steps 1..T
    params/<name>   shape        its initial value (optional; else the case's seeded init)

`record` writes that layout. Reading is chunked too: a stored (uncompressed)
member is read by seeking to the rows needed.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harness.base.limits import MAX_PARAMS, MAX_STEPS
from reference.errors import InputValueError


class StreamError(InputValueError):
    """A stream that cannot be built or read (bad option, unreadable recording); one line."""


class Recording:
    """Chunked reader of the recorded layout; never loads a whole gradient array.

    Every member's ``.npy`` header is checked against the member's stored size, so a truncated
    or padded file is refused when it is opened, and the shapes it claims against the harness's
    limits (`harness.base.limits`) before anything is read."""

    MAX_MEMBERS = 10_000

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise StreamError(f"{path}: no such recording")
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.infolist() if m.filename.endswith(".npy")]
                if len(members) > self.MAX_MEMBERS:
                    raise ValueError(f"{len(members)} arrays (at most {self.MAX_MEMBERS})")
                self._headers = {m.filename: self._header(zf, m) for m in members}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise StreamError(f"{path}: not a readable .npz ({exc})") from None
        self._grads = {k[len("grads/"):-4]: k for k in self._headers if k.startswith("grads/")}
        if not self._grads:
            raise StreamError(f"{path}: no 'grads/<name>' arrays (layout: grads/<name> (T, *shape), "
                              "optional params/<name>)")
        lengths = {self._headers[k][0][0] if self._headers[k][0] else 0 for k in self._grads.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise StreamError(f"{path}: every grads/<name> needs the same number of steps T >= 1 "
                              "along axis 0")
        self.steps = lengths.pop()
        self.shapes: dict[str, tuple[int, ...]] = {n: self._headers[k][0][1:] for n, k in self._grads.items()}
        n_params = sum(math.prod(s) for s in self.shapes.values())
        if n_params > MAX_PARAMS:
            raise StreamError(f"{path}: {n_params:,} parameters per step (at most {MAX_PARAMS:,})")
        for n, k in self._grads.items():
            if not self._headers[k][0][1:] and len(self._headers[k][0]) < 2:
                raise StreamError(f"{path}: grads/{n} has shape {self._headers[k][0]}; expected (T, *shape) with "
                                  "at least one dimension per step")

    @staticmethod
    def _header(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
        with zf.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f, max_header_size=10_000)
            if fortran and len(shape) > 1:
                raise ValueError(f"{member.filename} is Fortran-ordered; save C-ordered arrays")
            if dtype.hasobject or dtype.kind not in "fiu":
                raise ValueError(f"{member.filename} has dtype {dtype}; real numbers only")
            offset = f.tell()
        per_step = math.prod(shape[1:]) if len(shape) > 1 else 1
        if per_step > MAX_PARAMS or (shape and shape[0] > MAX_STEPS):  # claims are checked before data is read
            raise ValueError(f"{member.filename} claims shape {tuple(shape)}: {per_step:,} parameters per step (at "
                             f"most {MAX_PARAMS:,}) or more than {MAX_STEPS:.0e} steps")
        data = math.prod(shape) * dtype.itemsize
        if member.file_size != offset + data:
            state = "truncated" if member.file_size < offset + data else "longer than its header says"
            raise ValueError(f"{member.filename} is {state} ({member.file_size - offset} bytes of data for shape "
                             f"{tuple(shape)} {dtype})")
        return tuple(int(d) for d in shape), dtype, offset

    def _rows(self, key: str, a: int, b: int) -> np.ndarray:
        shape, dtype, offset = self._headers[key]
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open(key) as f:
            f.seek(offset + a * row)
            data = f.read((b - a) * row)
        if len(data) != (b - a) * row:
            raise StreamError(f"{self.path}: {key} ended early (the file changed while it was read)")
        return np.frombuffer(data, dtype).reshape((b - a, *shape[1:])).astype(np.float64)

    def read(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Rows ``a:b`` (0-based) of every gradient, as float64."""
        try:
            return {name: self._rows(key, a, b) for name, key in self._grads.items()}
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise StreamError(f"{self.path}: unreadable ({exc})") from None

    def trajectory(self, a: int, b: int) -> dict[str, np.ndarray] | None:
        """Rows ``a:b`` of the recorded parameters after each step (``trajectory/<name>``), or None."""
        keys = {n: f"trajectory/{n}.npy" for n in self._grads}
        if not any(k in self._headers for k in keys.values()):
            return None
        for n, k in keys.items():
            if k not in self._headers or self._headers[k][0] != (self.steps, *self.shapes[n]):
                raise StreamError(f"{self.path}: trajectory/{n} must be ({self.steps}, *{self.shapes[n]}), "
                                  f"like grads/{n}")
        try:
            return {n: self._rows(k, a, b) for n, k in keys.items()}
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise StreamError(f"{self.path}: unreadable ({exc})") from None

    def lrs(self) -> np.ndarray | None:
        """The recorded learning rate of each step (``lr``, ``(T,)``), or None."""
        if "lr.npy" not in self._headers:
            return None
        if self._headers["lr.npy"][0] != (self.steps,):
            raise StreamError(f"{self.path}: lr must have shape ({self.steps},), one per step")
        return self._rows("lr.npy", 0, self.steps)

    def params(self) -> dict[str, np.ndarray] | None:
        keys = {n: f"params/{n}.npy" for n in self._grads}
        present = [n for n, k in keys.items() if k in self._headers]
        if not present:
            return None
        if len(present) != len(keys):
            missing = sorted(set(keys) - set(present))
            raise StreamError(f"{self.path}: params/ is missing {', '.join(missing)}")
        for n, k in keys.items():
            if self._headers[k][0] != self.shapes[n]:
                raise StreamError(f"{self.path}: params/{n} has shape {self._headers[k][0]}, grads/{n} rows "
                                  f"{self.shapes[n]}")
        try:  # read through the same bounded path as the gradients: shape checked first, size exact
            out = {}
            for n, k in keys.items():
                shape, dtype, offset = self._headers[k]
                with zipfile.ZipFile(self.path) as zf, zf.open(k) as f:
                    f.seek(offset)
                    data = f.read(math.prod(shape) * dtype.itemsize)
                out[n] = np.frombuffer(data, dtype).reshape(shape).astype(np.float64)
            return out
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
            raise StreamError(f"{self.path}: unreadable params ({exc})") from None


def record(path: str | Path, grads: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray] | None = None,
           compress: bool = False, trajectory: Mapping[str, np.ndarray] | None = None,
           lrs: np.ndarray | None = None) -> Path:
    """Write a recording: ``grads[name]`` is ``(T, *shape)``, ``params[name]`` the initial value; for
    `rmsprop-harness identify --recording`, also ``trajectory[name]`` ``(T, *shape)`` (the parameters after each
    step) and ``lrs`` ``(T,)`` (the learning rate of each step)."""
    arrays = {f"grads/{n}": np.ascontiguousarray(g) for n, g in grads.items()}
    arrays |= {f"params/{n}": np.ascontiguousarray(p) for n, p in (params or {}).items()}
    arrays |= {f"trajectory/{n}": np.ascontiguousarray(p) for n, p in (trajectory or {}).items()}
    if lrs is not None:
        arrays["lr"] = np.ascontiguousarray(np.asarray(lrs, np.float64).reshape(-1))
    path = Path(path)
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")


class Recorder:
    """Record a training loop for `rmsprop-harness identify --recording` in three lines::

        rec = Recorder(params)                  # before the loop: {name: array} (NumPy, or anything np.asarray takes)
        rec.step(grads, params, lr)             # each step: the gradients it got, the parameters after it, its lr
        rec.save("run.npz")                     # after: grads/, params/, trajectory/ and lr in one file
    """

    def __init__(self, params: Mapping[str, np.ndarray]):
        self.params0 = {n: np.array(p, np.float64) for n, p in params.items()}
        self.grads: dict[str, list[np.ndarray]] = {n: [] for n in self.params0}
        self.after: dict[str, list[np.ndarray]] = {n: [] for n in self.params0}
        self.lrs: list[float] = []

    def step(self, grads: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], lr: float) -> None:
        for n in self.params0:
            self.grads[n].append(np.array(grads[n], np.float64))
            self.after[n].append(np.array(params[n], np.float64))
        self.lrs.append(float(lr))

    def save(self, path: str | Path) -> Path:
        return record(path, {n: np.stack(g) for n, g in self.grads.items()}, self.params0,
                      trajectory={n: np.stack(a) for n, a in self.after.items()}, lrs=np.asarray(self.lrs))


__all__ = ["Recorder", "Recording", "StreamError", "record"]
