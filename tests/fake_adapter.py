"""A stand-in adapter for worker and runner tests: the float64 reference itself, misbehaving on request.

Behaviour per task comes from the environment (the worker inherits it), keyed by the
stream seed so one suite can mix behaviours: ``FAKE_<seed>`` is one of ``ok``, ``drift``
(parameters off by 1e-6 relative: a real divergence), ``nudge`` (float32 parameters 2^-22 relative
off: a few ULP, still within tolerance), ``nan`` (one parameter NaN),
``raise``, ``crash`` (``os._exit(3)``, as a segfault looks from outside), ``hang``, ``exit`` (``sys.exit(0)``
inside the run), ``sleep`` (``FAKE_SLEEP`` seconds before the task).

Hostile results, each of which must become an error row for that task alone: ``none`` (no snapshot),
``first`` (stops after the first recorded step), ``missing-tensor``, ``wrong-shape``, ``wrong-step``,
``duplicate-step``, ``non-array`` (a string where an array belongs), ``complex``, ``object`` (an object whose
unpickling would write ``FAKE_MARKER``: the driver must never unpickle), ``endless`` (snapshots forever),
``noisy`` (prints ``BENCH {...}`` lines and garbage to stdout and stderr, then behaves).

Rounding: ``f32`` runs torch's RMSprop in float32 NumPy arithmetic (``p - lr*g/(sqrt(v)+eps)``) and
``f32-reordered`` the same with one operation re-associated (``p - g*(lr/(sqrt(v)+eps))``): both
correct, with different ULP errors.

``FAKE_MISSING`` makes the adapter unavailable; ``FAKE_GPU=1`` pretends a GPU exists.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import numpy as np

from harness.adapters.base import Adapter, Snapshot, Task
from harness.base.streams import GradientStream, cast
from reference import init, presets, update


class Fake(Adapter):
    name = "fake"
    framework = "numpy"
    preset = "torch"  # it runs torch's semantics (`reference.presets.torch`) on the arguments it gets

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
        if behaviour == "exit":
            sys.exit(0)
        if behaviour == "sleep":
            time.sleep(float(os.environ.get("FAKE_SLEEP", "1")))
        if behaviour == "noisy":
            print('BENCH {"status": "ok", "adapter": "forged"}', flush=True)
            print("\x00garbage \xff", file=sys.stderr, flush=True)
        if behaviour in ("f32", "f32-reordered"):
            yield from _float32(task, reordered=behaviour == "f32-reordered")
            return
        if behaviour == "endless":
            while True:
                yield Snapshot(1, {n: np.zeros(s) for n, s in task.shapes.items()})
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
                snap = Snapshot(t, out, {"nu": dict(zip(params, state.nu, strict=True))})
                hostile = _HOSTILE.get(behaviour)
                if hostile is not None:
                    snap = hostile(snap, t == task.record_steps[0])
                    if snap is None:
                        return
                yield snap
                if behaviour == "duplicate-step" and t == task.record_steps[0]:
                    yield snap

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
        if behaviour == "noisy":  # a line that the old stdout protocol would have taken for a result
            print('BENCH {"adapter": "forged", "status": "ok", "median_s": 1e-9}', flush=True)
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


class Unpicklable:
    """Unpickling this writes a marker file: proof that someone unpickled adapter output."""

    def __reduce__(self):
        return (_touch, (os.environ.get("FAKE_MARKER", "/tmp/fake-unpickled"),))


def _touch(path: str) -> None:
    with open(path, "w") as f:
        f.write("unpickled")


def _first_only(snap: Snapshot, first: bool) -> Snapshot | None:
    return snap if first else None


def _missing(snap: Snapshot, first: bool) -> Snapshot:
    return Snapshot(snap.step, dict(list(snap.params.items())[1:]), snap.state)


def _wrong_shape(snap: Snapshot, first: bool) -> Snapshot:
    name = next(iter(snap.params))
    return Snapshot(snap.step, {**snap.params, name: snap.params[name].ravel()[:-1]}, snap.state)


def _wrong_step(snap: Snapshot, first: bool) -> Snapshot:
    return Snapshot(snap.step + 1, snap.params, snap.state)


def _replace_first(value):
    def change(snap: Snapshot, first: bool) -> Snapshot:
        name = next(iter(snap.params))
        return Snapshot(snap.step, {**snap.params, name: value(snap.params[name])}, snap.state)
    return change


_HOSTILE = {
    "none": lambda snap, first: None,
    "first": _first_only,
    "missing-tensor": _missing,
    "wrong-shape": _wrong_shape,
    "wrong-step": _wrong_step,
    "non-array": _replace_first(lambda a: "not an array"),
    "complex": _replace_first(lambda a: a.astype(np.complex128) + 1j),
    "object": _replace_first(lambda a: Unpicklable()),
}


def _float32(task: Task, reordered: bool) -> Iterator[Snapshot]:
    """torch's RMSprop (no momentum) in float32 NumPy arithmetic, in one of two association orders."""
    f32 = np.float32
    kwargs = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, **task.kwargs}
    lr, alpha, eps = f32(kwargs["lr"]), f32(kwargs["alpha"]), f32(kwargs["eps"])
    params = {n: p.astype(np.float32) for n, p in task.initial().items()}
    v = {n: np.zeros_like(p) for n, p in params.items()}
    for t, grads in task.gradients():
        for n, p in params.items():
            g = grads[n].astype(np.float32)
            v[n] = alpha * v[n] + (f32(1) - alpha) * g * g
            den = np.sqrt(v[n]) + eps
            params[n] = p - g * (lr / den) if reordered else p - lr * g / den
        if t in task.record_steps:
            yield Snapshot(t, {n: p.astype(np.float64) for n, p in params.items()},
                           {"nu": {n: a.astype(np.float64) for n, a in v.items()}})
