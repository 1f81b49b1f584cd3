"""The workloads as torch ``nn.Module``s; the optimizer is any torch-``Optimizer`` adapter's ``make``
(torch itself, timm, stable-baselines3, pfrl, bitsandbytes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.training.workloads import QUADRATIC_CURVATURE, Workload


def determinism() -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)


class Model:
    def __init__(self, workload: Workload, dtype: str, params: dict[str, np.ndarray]):
        import torch
        from torch import nn

        self.workload, self.dtype = workload, getattr(torch, dtype)
        kind = workload.model
        if kind == "linear":
            self.module = nn.Linear(3, 2)
        elif kind == "quadratic":
            self.module = nn.Module()
            self.module.point = nn.Parameter(torch.zeros(2))
        elif kind == "mlp":
            self.module = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
        else:
            self.module = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), _ChannelsLastFlatten(), nn.Linear(288, 10))
        self.module.to(self.dtype)
        self.params = [p for p in self.module.parameters()]  # the canonical order: layer by layer, weight, bias
        self.set(params)

    # canonical (Keras/JAX) layout <-> torch's
    @staticmethod
    def _to_torch(a: np.ndarray) -> np.ndarray:
        if a.ndim == 2:
            return a.T  # (in, out) -> (out, in)
        if a.ndim == 4:
            return a.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        return a

    @staticmethod
    def _from_torch(a: np.ndarray) -> np.ndarray:
        if a.ndim == 2:
            return a.T
        if a.ndim == 4:
            return a.transpose(2, 3, 1, 0)
        return a

    def set(self, params: dict[str, np.ndarray]) -> None:
        import torch

        with torch.no_grad():
            for p, a in zip(self.params, params.values(), strict=True):
                p.copy_(torch.from_numpy(np.ascontiguousarray(self._to_torch(a))).to(self.dtype))

    def get(self) -> dict[str, np.ndarray]:
        return {n: np.ascontiguousarray(self._from_torch(p.detach().double().numpy()))
                for n, p in zip(self.workload.shapes, self.params, strict=True)}

    def _loss(self, x: np.ndarray, y: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        if self.workload.model == "quadratic":
            p = self.module.point
            curvature = torch.tensor(QUADRATIC_CURVATURE, dtype=self.dtype)
            return 0.5 * (curvature * p * p).sum()
        inputs = torch.from_numpy(x).to(self.dtype)
        if self.workload.model == "conv":
            inputs = inputs.permute(0, 3, 1, 2)  # NHWC -> NCHW
        out = self.module(inputs)
        if self.workload.loss == "xent":
            return F.cross_entropy(out, torch.from_numpy(y))
        return F.mse_loss(out, torch.from_numpy(y).to(self.dtype))

    def loss_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        for p in self.params:
            p.grad = None
        loss = self._loss(x, y)
        loss.backward()
        grads = {n: np.ascontiguousarray(self._from_torch(p.grad.double().numpy()))
                 for n, p in zip(self.workload.shapes, self.params, strict=True)}
        return float(loss), grads

    def optimizer(self, target: str, args: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
        from harness.process.loading import instantiate

        opt = instantiate(target).make(self.params, dict(args))

        def step(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
            opt.zero_grad(set_to_none=True)
            loss = self._loss(x, y)
            loss.backward()
            norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in self.params))
            opt.step()
            return float(loss), norm

        return step

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        import torch

        with torch.no_grad():
            loss = float(self._loss(x, y))
            if not self.workload.classifier:
                return loss, math.nan
            inputs = torch.from_numpy(x).to(self.dtype).permute(0, 3, 1, 2) if self.workload.model == "conv" \
                else torch.from_numpy(x).to(self.dtype)
            predicted = self.module(inputs).argmax(1).numpy()
        return loss, float(np.mean(predicted == y))


def _ChannelsLastFlatten():
    """Flatten a (N, C, H, W) map in (h, w, c) order, as Keras and JAX flatten NHWC maps."""
    from torch import nn

    class ChannelsLastFlatten(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    return ChannelsLastFlatten()
