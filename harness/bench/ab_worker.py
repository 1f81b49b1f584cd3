"""One side of a paired A/B benchmark: a worker that times blocks of optimizer steps on command.

Run by path (``python -P .../ab_worker.py FD``) with ``PYTHONPATH`` starting at one side's source
tree, so ``harness.adapters`` is *that* tree's code: the baseline's (a ``git archive`` of BASE_REF)
or the current one. This file therefore uses nothing of the harness but the adapter protocol that
every version has (``ADAPTERS[name].target``, ``Adapter.bench(BenchPoint) -> Stepper``), and its
own line protocol: one JSON command per line on stdin, one JSON reply per line on the pipe ``FD``
(the adapter's own prints go to stdout, which the driver only keeps the tail of).

Commands: ``{"build": [point, ...]}`` builds and warms every point's stepper and replies with each
one's per-step estimate (or why it is skipped, or its error) and, when the point asks (``count``:
steps), its deterministic per-step work (`_count`) from a separately built stepper;
``{"sample": i, "n": n}`` runs one untimed step (its tensors back in cache after the other side
ran) and then times ``n`` steps and one sync; ``{"exit": true}``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import sys
import time
import traceback


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    parent = int(os.environ.get("RMSPROP_HARNESS_PARENT", "0") or 0)
    if parent and os.getppid() != parent:
        os._exit(70)


def _block(stepper, n: int) -> float:
    """`harness.bench.timer._block`, repeated on purpose: importing it here would import the *side's* timer (an
    older one lacks ``device_time``), and both sides must be timed by the same code."""
    if getattr(stepper, "device_time", None) is not None:  # a GPU step: CUDA events (newer adapters only)
        return stepper.device_time(n)
    step, sync = stepper.step, stepper.sync
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return time.perf_counter() - start


class _JaxCosts:
    """``jax.jit`` wrapped while the adapter builds its step: each jitted call made during a counted step
    adds XLA's own cost analysis of that executable (``bytes accessed``, ``flops``): deterministic."""

    def __init__(self):
        import jax

        self.jax, self.real, self.recording, self.costs = jax, jax.jit, False, []
        jax.jit = self.jit

    def jit(self, fun=None, *args, **kwargs):
        if fun is None:  # used as @jax.jit(...) with options only
            return lambda f: self.jit(f, *args, **kwargs)
        jitted, costs = self.real(fun, *args, **kwargs), self

        class Counted:
            def __call__(self, *a, **k):
                if costs.recording:
                    cost = jitted.lower(*a, **k).compile().cost_analysis()
                    costs.costs.append(cost[0] if isinstance(cost, list) else cost)
                return jitted(*a, **k)

            def __getattr__(self, name):
                return getattr(jitted, name)

        return Counted()

    def restore(self) -> None:
        self.jax.jit = self.real


def _count(stepper, jax_costs: _JaxCosts | None, steps: int) -> dict:
    """Per-step work of ``steps`` steps, from the framework's own accounting: torch's dispatcher (every
    aten op, and the bytes of every tensor it reads and writes, as declared) or XLA's cost analysis of
    every jitted executable called. Never a timing: two runs give the same numbers."""
    torch = sys.modules.get("torch")
    if jax_costs is not None:
        jax_costs.recording, jax_costs.costs = True, []
        try:
            for _ in range(steps):
                stepper.step()
            stepper.sync()
        finally:
            jax_costs.recording = False
        if jax_costs.costs:
            return {"counter": "xla cost analysis", "ops": len(jax_costs.costs) / steps,
                    "bytes": sum(c.get("bytes accessed", 0.0) for c in jax_costs.costs) / steps,
                    "flops": sum(c.get("flops", 0.0) for c in jax_costs.costs) / steps}
    if torch is not None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        class Count(TorchDispatchMode):
            ops, bytes = 0, 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                self.ops += 1
                # read: every tensor argument; written: what it returns and what its schema says it mutates
                # (in-place foreach ops return nothing)
                mutated = [a for a, arg in zip(args, func._schema.arguments, strict=False)
                           if arg.alias_info is not None and arg.alias_info.is_write]
                mutated += [v for k, v in kwargs.items() for arg in func._schema.arguments
                            if arg.name == k and arg.alias_info is not None and arg.alias_info.is_write]
                for leaves in (tree_leaves((args, kwargs)), tree_leaves((out, mutated))):
                    seen = set()
                    for t in leaves:
                        if isinstance(t, torch.Tensor) and id(t) not in seen:
                            seen.add(id(t))
                            self.bytes += t.numel() * t.element_size()
                return out

        with Count() as count:
            for _ in range(steps):
                stepper.step()
            stepper.sync()
        if count.ops:
            return {"counter": "torch dispatch", "ops": count.ops / steps, "bytes": count.bytes / steps}
    return {"counter": None, "why": "no deterministic counter for this framework (torch's dispatcher and XLA's "
                                    "cost analysis only)"}


def _build_one(p: dict, adapters: dict, point_class) -> dict:
    """One point's stepper, built and warmed; or ``skip`` (the adapter cannot run it here, a reason)."""
    info = adapters.get(p["adapter"])
    if info is None:
        return {"skip": f"no adapter {p['adapter']!r} in this source tree"}
    module, _, attr = info.target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    adapter = obj()
    reason = adapter.available()
    if reason:
        return {"skip": reason}
    if p["device"] not in adapter.devices():
        return {"skip": f"no {p['device']} visible to {p['adapter']}"}
    offered = adapter.bench_variants(p["device"])
    if p["variant"] not in offered:
        return {"skip": f"no variant {p['variant']!r} on {p['device']} (offered: {', '.join(offered) or 'none'})"}
    shapes = {n: tuple(s) for n, s in p["shapes"].items()}
    point = point_class(p["adapter"], p["variant"], p["device"], p["dtype"], shapes, p["kwargs"])
    counts = {}
    if p.get("count"):  # a stepper of its own: the timed one never runs through a counting wrapper
        jax_costs = None
        if adapter.framework in ("jax", "optax") or adapter.env.get("KERAS_BACKEND") == "jax":
            jax_costs = _JaxCosts()
        try:
            counted = adapter.bench(point)
        finally:
            if jax_costs is not None:
                jax_costs.restore()
        counted.step()  # not counted: lazily created state, tracing and compilation happen once
        counted.sync()
        counts = _count(counted, jax_costs, p["count"])
        del counted
    stepper = adapter.bench(point)
    stepper.sync()
    first = _block(stepper, 1)
    warm, n, per_step = time.perf_counter(), 1, first
    while time.perf_counter() - warm < p.get("warmup_s", 0.3):  # caches, allocators, JIT tiers settle
        per_step = _block(stepper, n) / n
        n = max(1, min(n * 2, int(0.02 / max(per_step, 1e-9)) or 1))
    return {"stepper": stepper, "per_step_s": per_step, "first_step_s": first, "counts": counts}


def _build(points: list[dict]) -> list[dict]:
    """Every point (`_build_one`); a point that raises is that point's error, not the worker's end."""
    from harness.adapters import ADAPTERS
    from harness.adapters.base import BenchPoint

    out = []
    for p in points:
        try:
            out.append(_build_one(p, ADAPTERS, BenchPoint))
        except Exception as exc:
            out.append({"error": traceback.format_exception_only(type(exc), exc)[-1].strip()[:300]})
    return out


def main(fd: int) -> int:
    _die_with_parent()
    reply = os.fdopen(fd, "w", buffering=1)
    built: list[dict] = []
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if "build" in command:
                built = _build(command["build"])
                answer = {"points": [{k: v for k, v in b.items() if k != "stepper"} for b in built]}
            elif "sample" in command:
                stepper = built[command["sample"]]["stepper"]
                _block(stepper, 1)
                answer = {"t": _block(stepper, int(command["n"])) / int(command["n"])}
            else:
                break
        except Exception as exc:  # the driver reports it as the point's error, with the last line
            answer = {"error": traceback.format_exception_only(type(exc), exc)[-1].strip()[:300]}
        reply.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
