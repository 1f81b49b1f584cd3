"""`torch.optim.RMSprop`: the for-loop (``foreach=False``), foreach and capturable implementations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from harness.adapters.base import Adapter, BenchPoint, Snapshot, Stepper, Task, as_float64
from harness.base.host import cpu_name, missing


class TorchDevices(Adapter):
    """What every torch-driven adapter shares: availability, the CPU and a CUDA GPU when visible."""

    framework = "torch"
    dtypes = ("float16", "bfloat16", "float32", "float64")

    def available(self) -> str | None:
        return missing("torch")

    def devices(self) -> list[str]:
        import torch

        return ["cpu", *(["gpu"] if torch.cuda.is_available() else [])]

    def device_name(self, device: str) -> str:
        import torch

        return torch.cuda.get_device_name(0) if device == "gpu" else cpu_name()


class TorchOptimizer(TorchDevices):
    """An optimizer with torch's ``Optimizer`` interface (``param_groups``, ``state``, ``step``): torch's own
    and the libraries built on it (timm, stable-baselines3, pfrl, bitsandbytes). A subclass says how to build
    it (`make`) and which state entries hold what (`state_keys`); running, schedules and snapshots are shared."""

    #: optimizer state key -> the harness' state kind (nu: square average, mu: gradient average, trace: momentum)
    state_keys: ClassVar[dict[str, str]] = {"square_avg": "nu", "grad_avg": "mu", "momentum_buffer": "trace"}

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        """The optimizer over ``params`` built from the task's native ``kwargs``."""
        raise NotImplementedError

    def state_of(self, opt: Any, p: Any) -> dict[str, Any]:
        """State tensors of parameter ``p`` by kind (float64 NumPy copies)."""
        return {kind: as_float64(opt.state[p][key].detach().cpu().double())
                for key, kind in self.state_keys.items() if key in opt.state[p]}

    def run(self, task: Task) -> Iterator[Snapshot]:
        import torch

        device = torch.device("cuda" if task.device == "gpu" else "cpu")
        dtype = getattr(torch, task.dtype)
        names = list(task.shapes)
        params = [torch.nn.Parameter(torch.from_numpy(a).to(device, dtype)) for a in task.initial().values()]
        opt = self.make(params, dict(task.kwargs))
        record = set(task.record_steps)
        for t, grads in task.gradients():
            for p, n in zip(params, names, strict=True):
                p.grad = torch.from_numpy(grads[n]).to(device, dtype)
            if task.lrs is not None:
                for group in opt.param_groups:
                    group["lr"] = task.lr(t)
            opt.step()
            if t in record:
                state: dict[str, dict] = {}
                for p, n in zip(params, names, strict=True):
                    for kind, value in self.state_of(opt, p).items():
                        state.setdefault(kind, {})[n] = value
                params_out = {n: as_float64(p.detach().cpu().double()) for n, p in zip(names, params, strict=True)}
                yield Snapshot(t, params_out, state)

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"default": "the optimizer's step as a user calls it"}

    def bench(self, point: BenchPoint) -> Stepper:
        params, sync, peak = _bench_params(point)
        return Stepper(self.make(params, dict(point.kwargs)).step, sync, peak)


def _bench_params(point: BenchPoint) -> tuple[list, Callable[[], None], Callable[[], int | None]]:
    """The benchmark's parameters (gradients attached) on its device, a sync and a peak-memory reader."""
    import torch

    device = torch.device("cuda" if point.device == "gpu" else "cpu")
    dtype = getattr(torch, point.dtype)
    params0, grads0 = point.arrays()
    params = []
    for n in list(params0):
        # copy=True: torch-owned (64-byte aligned) memory, as a model's parameters are, not NumPy's buffer
        p = torch.nn.Parameter(torch.from_numpy(params0.pop(n)).to(device, dtype, copy=True))
        p.grad = torch.from_numpy(grads0.pop(n)).to(device, dtype, copy=True)
        params.append(p)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    peak = (lambda: int(torch.cuda.max_memory_allocated())) if cuda else (lambda: None)
    return params, sync, peak


def cuda_events(step: Callable[[], Any]) -> Callable[[int], float]:
    """Seconds for ``n`` steps on the GPU's own clock: CUDA events recorded around the enqueued steps (the
    host's launch overhead counts only where it leaves the device idle)."""
    import torch

    def time_n(n: int) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return time_n


class TorchRMSprop(TorchOptimizer):
    foreach = False
    capturable = False

    def unsupported(self, task: Task) -> str | None:
        if self.capturable and task.device != "gpu":
            return "unsupported: capturable=True (torch captures CUDA graphs only; run it with --device gpu)"
        return super().unsupported(task)

    def make(self, params: list, kwargs: dict[str, Any]) -> Any:
        import torch

        kwargs = {**kwargs, "foreach": self.foreach}
        if self.capturable:
            kwargs["capturable"] = True
        return torch.optim.RMSprop(params, **kwargs)

    def bench_variants(self, device: str) -> dict[str, str]:
        if self.capturable:
            return {"cuda-graph": "capturable=True, foreach: the step captured once in a CUDA graph and "
                                  "replayed (no CPU launch overhead)"} if device == "gpu" else {}
        if self.foreach:
            return {"foreach": "foreach=True: multi-tensor kernels, a few launches per step for all tensors",
                    "compiled": "torch.compile of the foreach step (inductor; compile time reported apart)"}
        return {"for-loop": "foreach=False: the default single-tensor loop, kernels per tensor and operation"}

    def bench(self, point: BenchPoint) -> Stepper:
        import torch

        params, sync, peak = _bench_params(point)
        kwargs = {**point.kwargs, "foreach": self.foreach}
        if point.variant == "cuda-graph":
            opt = torch.optim.RMSprop(params, **kwargs, capturable=True)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # state is allocated by eager warm-up steps, outside the capture
                for _ in range(3):
                    opt.step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                opt.step()
            return Stepper(graph.replay, sync, peak, device_time=cuda_events(graph.replay))
        opt = torch.optim.RMSprop(params, **kwargs)
        if point.variant == "compiled":
            @torch.compile(fullgraph=False)
            def compiled() -> None:
                opt.step()

            return Stepper(compiled, sync, peak, device_time=cuda_events(compiled) if point.device == "gpu" else None)
        return Stepper(opt.step, sync, peak, device_time=cuda_events(opt.step) if point.device == "gpu" else None)


class Single(TorchRMSprop):
    name = "torch.single"
    preset = family = "torch"


class Foreach(TorchRMSprop):
    name = "torch.foreach"
    preset = family = "torch"
    foreach = True


class Capturable(TorchRMSprop):
    name = "torch.capturable"
    preset = family = "torch"
    device_kinds = ("gpu",)
    foreach = True
    capturable = True
