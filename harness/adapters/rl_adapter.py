"""The RL libraries' torch RMSprop clones: stable-baselines3 `RMSpropTFLike` and pfrl `RMSpropEpsInsideSqrt`."""

from __future__ import annotations

from typing import Any

from harness.adapters.torch_adapter import TorchOptimizer
from harness.base.host import missing


class SB3(TorchOptimizer):
    name = "sb3"
    framework = "stable_baselines3"
    preset = family = "sb3"

    def available(self) -> str | None:
        return missing("torch", "stable_baselines3")

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

        return RMSpropTFLike(params, **kwargs)


class PFRL(TorchOptimizer):
    name = "pfrl"
    framework = "pfrl"
    preset = family = "pfrl"

    def available(self) -> str | None:
        return missing("torch", "pfrl")

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        import warnings

        from pfrl.optimizers import RMSpropEpsInsideSqrt

        # its step uses torch overloads deprecated since 1.5 (add(Number, Tensor)): they still run, noisily
        warnings.filterwarnings("ignore", message="This overload of", category=UserWarning)
        return RMSpropEpsInsideSqrt(params, **kwargs)
