"""What a step must move, and the memory kernels that set the ceiling.

An RMSprop step must read p, g, v and write p, v: 5 values per parameter (20 bytes in float32),
2 more each for a momentum buffer and for centered's mean gradient (`bytes_per_param`, from the
adapter's semantics). The same run measures plain memory kernels at every size, dtype and device:
a copy (``np.copyto`` in one thread; ``Tensor.copy_`` with torch's threads, device to device on a
GPU; read + write) and an in-place add (``a += b``: read two, write one). An optimizer updates in
place, and a copy to a separate buffer also pays write-allocate traffic (each destination line is
read before it is overwritten), so on a CPU the in-place add is the fairer ceiling. The roofline
is the fastest of these kernels at that size (the ``copy_gb_per_s`` column).
"""

from __future__ import annotations

import math

import numpy as np

from harness.adapters import AdapterInfo
from harness.adapters.base import Adapter, BenchPoint, Stepper
from harness.adapters.torch_adapter import TorchDevices  # imports torch only inside its methods
from reference import RMSpropSpec

ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}


def bytes_per_param(spec: RMSpropSpec | None, dtype: str, variant: str = "copy") -> int:
    """Bytes one step must move per parameter: read p, g, v, write p, v; +2 values for a
    momentum buffer, +2 for centered's mean gradient. Without a spec, the roofline kernels:
    a copy reads and writes (2 values), an in-place add reads two and writes one (3)."""
    if spec is None:
        return (3 if variant == "add" else 2) * ITEMSIZE[dtype]
    values = 5 + (2 if spec.momentum > 0 or spec.nesterov else 0) + (2 if spec.centered else 0)
    return values * ITEMSIZE[dtype]


def model_shapes(n_params: int) -> dict[str, tuple[int, ...]]:
    """About ``n_params`` parameters as a small MLP would hold them: 4 square weight matrices and
    their biases (8 tensors), the last weight trimmed so the total is exact."""
    width = int((math.sqrt(1 + n_params) - 1) / 2)  # 4*(w*w + w) <= n_params
    if width < 1:  # fewer than 8 parameters: no room for layers
        return {"weight": (n_params,)}
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(4):
        shapes[f"layer{layer}.weight"] = (width, width)
        shapes[f"layer{layer}.bias"] = (width,)
    rest = n_params - 4 * (width * width + width)
    if rest > 0:
        shapes["head.weight"] = (rest,)
    return shapes


def split_shapes(n_params: int, n_tensors: int) -> dict[str, tuple[int, ...]]:
    """``n_params`` in ``n_tensors`` equal 1-D tensors (the per-tensor overhead experiment)."""
    base, extra = divmod(n_params, n_tensors)
    return {f"t{i}": (base + (1 if i < extra else 0),) for i in range(n_tensors)}



class NumpyCopy(Adapter):
    """``np.copyto(dst, src)``: the single-threaded copy bandwidth of the host."""

    name = "copy.numpy"
    framework = "numpy"

    def available(self) -> str | None:
        return None

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"copy": "np.copyto(dst, src), one thread",
                "add": "np.add(a, b, out=a), one thread: in place, as an optimizer updates"} if device == "cpu" else {}

    def bench(self, point: BenchPoint) -> Stepper:
        n = sum(math.prod(s) for s in point.shapes.values())
        src = np.random.default_rng(point.seed).standard_normal(n).astype(np.dtype(_np_dtype(point.dtype)))
        dst = np.zeros_like(src)
        if point.variant == "add":
            return Stepper(lambda: np.add(dst, src, out=dst), threads=1)
        return Stepper(lambda: np.copyto(dst, src), threads=1)


class TorchCopy(TorchDevices):
    """``dst.copy_(src)`` with torch's threads on the CPU; device to device on a GPU."""

    name = "copy.torch"

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"copy": "dst.copy_(src) (torch's intra-op threads on the CPU; device to device on a GPU)",
                "add": "a.add_(b): in place, as an optimizer updates (no write-allocate traffic)"}

    def bench(self, point: BenchPoint) -> Stepper:
        import torch

        n = sum(math.prod(s) for s in point.shapes.values())
        device = torch.device("cuda" if point.device == "gpu" else "cpu")
        src = torch.randn(n, device=device, dtype=torch.float32).to(getattr(torch, point.dtype))
        dst = torch.zeros_like(src)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        if point.variant == "add":
            return Stepper(lambda: dst.add_(src), sync)
        return Stepper(lambda: dst.copy_(src), sync)


def _np_dtype(dtype: str) -> str:
    return "float32" if dtype in ("float16", "bfloat16") else dtype



#: The roofline kernels, run as adapters in their own workers (targets resolve in the worker).
COPY_ADAPTERS = {
    "copy.numpy": AdapterInfo(name="copy.numpy", target="harness.bench.roofline:NumpyCopy", preset="spec",
                              family="copy", devices=("cpu",)),
    "copy.torch": AdapterInfo(name="copy.torch", target="harness.bench.roofline:TorchCopy", preset="spec",
                              family="copy", devices=("cpu", "gpu")),
}

__all__ = ["COPY_ADAPTERS", "ITEMSIZE", "NumpyCopy", "TorchCopy", "bytes_per_param", "model_shapes", "split_shapes"]
