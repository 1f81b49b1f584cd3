"""bitsandbytes `RMSprop32bit` (and `RMSprop8bit`) on its CPU backend; CUDA where a CUDA build is installed."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.adapters.base import Task
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
