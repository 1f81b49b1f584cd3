"""A stand-in adapter for worker and runner tests: the float64 reference itself, misbehaving on request.

Behaviour per task comes from the environment (the worker inherits it), keyed by the
stream seed so one suite can mix behaviours: ``FAKE_<seed>`` is one of ``ok``, ``drift``
(parameters off by 1e-6 relative: a real divergence), ``nudge`` (float32 parameters 2^-22 relative
off: a few ULP, still within tolerance), ``nan`` (one parameter NaN),
``raise``, ``crash`` (``os._exit(3)``, as a segfault looks from outside), ``hang``.
``FAKE_MISSING`` makes the adapter unavailable; ``FAKE_GPU=1`` pretends a GPU exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np

from harness.adapters.base import Adapter, Snapshot, Task
from harness.streams import GradientStream, cast
from reference import init, presets, update


class Fake(Adapter):
    name = "fake"
    framework = "numpy"

    def available(self) -> str | None:
        return os.environ.get("FAKE_MISSING")

    def devices(self) -> list[str]:
        return ["cpu", "gpu"] if os.environ.get("FAKE_GPU") else ["cpu"]

    def versions(self) -> dict[str, str]:
        return {"fake": "1.0"}

    def run(self, task: Task) -> Iterator[Snapshot]:
        behaviour = os.environ.get(f"FAKE_{task.stream.seed}", "ok")
        if behaviour == "raise":
            raise RuntimeError("boom")
        if behaviour == "crash":
            os._exit(3)
        if behaviour == "hang":
            time.sleep(120)
        spec = presets.torch(**task.kwargs)
        params = {n: cast(p, task.dtype) for n, p in task.params0.items()}
        state = init(spec, params)
        stream = GradientStream(task.stream, task.shapes)
        for t, grads in enumerate(stream.steps(task.steps, task.dtype), start=1):
            params, state = update(spec, state, params, grads, task.lr(t))
            if t in task.record_steps:
                out = {n: p.copy() for n, p in params.items()}
                if behaviour == "drift":
                    out = {n: p * (1 + 1e-6) for n, p in out.items()}
                if behaviour == "nudge" and task.dtype == "float32":  # 2-4 ULP, inside the rounding tolerance
                    out = {n: (p * (1 + 2.0**-22)).astype(p.dtype) for n, p in out.items()}
                if behaviour == "nan":
                    first = next(iter(out))
                    out[first].reshape(-1)[0] = float("nan")
                yield Snapshot(t, out, {"nu": dict(zip(params, state.nu, strict=True))})

    # -- benchmark: the same RMSprop in NumPy; FAKE_BENCH=raise|crash misbehaves, FAKE_BENCH=slow does 30% more
    # work per step (a planted slowdown); FAKE_BENCH_SLEEP=S adds S seconds of sleep per step (1.3 S when slow),
    # so a test's timings are dominated by the OS timer rather than by the load on a shared machine
    def bench_variants(self, device: str) -> dict[str, str]:
        return {"numpy": "the stand-in's NumPy step"}

    def bench(self, point):
        from harness.adapters.base import Stepper

        behaviour = os.environ.get("FAKE_BENCH", "ok")
        if behaviour == "raise":
            raise MemoryError("pretend the device is full")
        if behaviour == "crash":
            os._exit(4)
        params, grads = point.arrays()
        lr = point.kwargs.get("lr", 1e-2)
        v = {n: np.zeros_like(p) for n, p in params.items()}
        slow = 1.3 if behaviour == "slow" else 1.0
        passes = round(10 * slow)  # 10 updates per step, 13 when slow: exactly 30% more work
        pause = float(os.environ.get("FAKE_BENCH_SLEEP", "0")) * slow

        def step() -> None:
            for _ in range(passes):
                for n, p in params.items():
                    g = grads[n]
                    v[n] *= 0.99
                    v[n] += 0.01 * g * g
                    p -= lr * g / (np.sqrt(v[n]) + 1e-8)
            if pause:
                time.sleep(pause)

        return Stepper(step)
