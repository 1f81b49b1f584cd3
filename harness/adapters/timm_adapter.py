"""timm `RMSpropTF`, its single-tensor and foreach paths, loaded without importing the rest of timm.

``import timm`` imports its models, and they import torchvision; a torchvision wheel matching a CPU-only torch
is not on PyPI (PyPI's builds need CUDA torch, and fail to import beside the CPU wheel with "operator
torchvision::nms does not exist"). The optimizer module needs nothing but torch, so the worker registers empty
``timm`` and ``timm.optim`` packages pointing at the installed files and imports ``timm.optim.rmsprop_tf``
from them: timm's own code, none of its models. (A process that imports timm normally first is left alone.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

from harness.adapters.torch_adapter import TorchOptimizer
from harness.base.host import missing


def rmsprop_tf() -> Any:
    """timm's ``RMSpropTF`` class, importing ``timm/optim/rmsprop_tf.py`` and its two helpers only."""
    if "timm.optim.rmsprop_tf" in sys.modules:
        return sys.modules["timm.optim.rmsprop_tf"].RMSpropTF
    spec = importlib.util.find_spec("timm")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("timm is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in (("timm", root), ("timm.optim", root / "optim")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            package.__package__ = name
            sys.modules[name] = package
    return importlib.import_module("timm.optim.rmsprop_tf").RMSpropTF


class _Timm(TorchOptimizer):
    framework = "timm"
    preset = family = "timm"
    foreach: ClassVar[bool] = False

    def available(self) -> str | None:
        return missing("torch", "timm")

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        return rmsprop_tf()(params, **{**kwargs, "foreach": self.foreach})

    def bench_variants(self, device: str) -> dict[str, str]:
        if self.foreach:
            return {"foreach": "foreach=True: timm's multi-tensor path"}
        return {"for-loop": "foreach=False: timm's single-tensor path (its default on the CPU)"}


class Single(_Timm):
    name = "timm.single"


class Foreach(_Timm):
    name = "timm.foreach"
    foreach = True
