"""bitsandbytes `RMSprop32bit` (and `RMSprop8bit`) on its CPU backend; CUDA where a CUDA build is installed."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.adapters.base import Task, as_float64
from harness.adapters.torch_adapter import TorchOptimizer
from harness.base.host import missing


class Bnb32(TorchOptimizer):
    name = "bnb.32bit"
    framework = "bitsandbytes"
    preset = family = "bitsandbytes"
    dtypes = ("float16", "bfloat16", "float32")
    state_keys: ClassVar[dict[str, str]] = {"state1": "nu"}
    cls = "RMSprop32bit"

    def available(self) -> str | None:
        return missing("torch", "bitsandbytes")

    def unsupported(self, task: Task) -> str | None:
        if task.dtype == "float64":
            return ("unsupported: dtype=float64 (bitsandbytes computes in float32 and writes the float32 result "
                    "into a float64 parameter: the run would test float32 arithmetic against float64's budget)")
        return super().unsupported(task)

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        import logging

        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "kernels-community" notices on import
        import bitsandbytes.optim as bnb_optim

        return getattr(bnb_optim, self.cls)(params, **kwargs)

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"default": f"{self.cls}: the step as a user calls it"}


class Bnb8(Bnb32):
    """`RMSprop8bit`: the state of tensors with at least ``min_8bit_size`` elements is block-wise 8-bit; the
    state it reports (``nu``) is that state dequantized."""

    name = "bnb.8bit"
    preset = "bitsandbytes_8bit"
    cls = "RMSprop8bit"

    def state_of(self, opt: Any, p: Any) -> dict[str, Any]:
        import torch

        state = opt.state[p]
        if state["state1"].dtype != torch.uint8:  # below min_8bit_size: a float32 state
            return super().state_of(opt, p)
        v = torch.ops.bitsandbytes.dequantize_blockwise(state["state1"], state["absmax1"], state["qmap1"], 256,
                                                        torch.float32)
        return {"nu": as_float64(v.double().cpu())}
