"""timm `RMSpropTF`, its single-tensor and foreach paths, loaded without importing the rest of timm.

``import timm`` imports its models, and they import torchvision; a torchvision wheel matching a CPU-only torch
is not on PyPI (PyPI's builds need CUDA torch, and fail to import beside the CPU wheel with "operator
torchvision::nms does not exist"). The optimizer module needs nothing but torch, so the worker registers empty
``timm`` and ``timm.optim`` packages pointing at the installed files and imports ``timm.optim.rmsprop_tf``
from them: timm's own code, none of its models. (A process that imports timm normally first is left alone.)
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

from harness.adapters.base import Task
from harness.adapters.torch_adapter import TorchOptimizer
from harness.base.host import missing, package_version


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
            # a real spec: importlib.util.find_spec("timm") (an availability check) must keep working
            package.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            package.__spec__.submodule_search_locations = [str(folder)]
            sys.modules[name] = package
    return importlib.import_module("timm.optim.rmsprop_tf").RMSpropTF


def _has_foreach() -> bool:
    return "foreach" in inspect.signature(rmsprop_tf().__init__).parameters


class _Timm(TorchOptimizer):
    framework = "timm"
    preset = family = "timm"
    foreach: ClassVar[bool] = False

    def available(self) -> str | None:
        return missing("torch", "timm")

    def unsupported(self, task: Task) -> str | None:
        if self.foreach and not _has_foreach():
            return f"unsupported: foreach (timm {package_version('timm')} has no foreach path; 1.0.30 added it)"
        return super().unsupported(task)

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        if _has_foreach():  # timm < 1.0.30 has only the single-tensor loop and no foreach argument
            kwargs = {**kwargs, "foreach": self.foreach}
        return rmsprop_tf()(params, **kwargs)

    def bench_variants(self, device: str) -> dict[str, str]:
        if self.foreach:  # (called in the worker, where importing timm's optimizer is allowed)
            return {"foreach": "foreach=True: timm's multi-tensor path"} if _has_foreach() else {}
        return {"for-loop": "foreach=False: timm's single-tensor path (its default on the CPU)"}


class Single(_Timm):
    name = "timm.single"


class Foreach(_Timm):
    name = "timm.foreach"
    foreach = True
