"""The bench worker: measures its jobs' points one after another and sends one row per point.

Rows go to the driver over the worker channel (`harness.process.channel`); the frameworks the
adapters imported are reported in a closing hello (the run's fingerprint). The overhead worker
compares the harness's timer and set-up with a hand-written loop, in paired samples.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import traceback
from typing import Any

import numpy as np

from harness.adapters.base import Adapter, BenchPoint
from harness.bench.memory import PeakRss, available_memory
from harness.bench.roofline import ITEMSIZE, model_shapes
from harness.bench.timer import _block, measure
from harness.process import channel
from harness.process.loading import instantiate

_FD: int | None = None  # the worker's message pipe (`harness.process.channel`)


def _emit(row: dict) -> None:
    channel.send(_FD, "row", row)


def _threads() -> int | None:
    """Intra-op threads of the framework in this worker (torch reports its own; else the cores)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    return int(os.environ.get("RMSPROP_HARNESS_BENCH_THREADS", 0)) or os.cpu_count()


def _worker(request: dict) -> None:
    for job in request["jobs"]:
        base = {"bench": job["bench"], "adapter": job["adapter"], "framework": job["family"]}
        try:
            adapter: Adapter = instantiate(job["target"])
            reason = adapter.available()
        except Exception as exc:  # an adapter that cannot even be created is an error row, not a crash
            _emit({**base, "status": "error", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        if reason:
            _emit({**base, "status": "skipped", "reason": reason})
            continue
        present = adapter.devices()
        allowed = job["devices_allowed"]
        devices = [d for d in allowed if d in present] if job["devices"] == "auto" else job["devices"]
        if not devices:  # "auto" and the adapter runs only where nothing is visible (capturable: a GPU)
            _emit({**base, "device": allowed[0], "status": "skipped",
                   "reason": f"runs on {', '.join(allowed)} only; none visible"})
        for device in devices:
            if device not in present:
                _emit({**base, "device": device, "status": "skipped", "reason": f"no {device} visible to "
                                                                                  f"{job['adapter']}"})
                continue
            variants = adapter.bench_variants(device)
            chosen = [v for v in variants if job["variants"] is None or v in job["variants"]]
            if not chosen:
                _emit({**base, "device": device, "status": "unsupported",
                       "reason": f"no benchmark variant {job['variants'] or ''} on {device}".replace(" []", "")})
                continue
            for dtype in job["dtypes"]:
                if dtype not in adapter.dtypes:
                    _emit({**base, "device": device, "dtype": dtype, "status": "unsupported",
                           "reason": f"dtype {dtype}"})
                    continue
                for label, shapes in job["layouts"]:
                    for variant in chosen:
                        _point(adapter, job, base, device, dtype, label, shapes, variant, variants[variant])


def _point(adapter: Adapter, job: dict, base: dict, device: str, dtype: str, label: str, shapes: dict,
           variant: str, description: str) -> None:
    n_params = sum(math.prod(s) for s in shapes.values())
    row = {**base, "variant": variant, "device": device, "device_name": adapter.device_name(device), "dtype": dtype,
           "n_params": n_params, "n_tensors": len(shapes), "layout": label, "description": description}
    need = 6 * n_params * ITEMSIZE[dtype]  # params, grads, 2-3 state buffers, the framework's temporaries
    free = available_memory(device)
    if free is not None and need > 0.8 * free:
        _emit({**row, "status": "skipped", "reason": f"needs about {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free"})
        return
    point = BenchPoint(job["adapter"], variant, device, dtype, {n: tuple(s) for n, s in shapes.items()},
                       job["kwargs"])
    stepper = None
    try:
        with PeakRss() as rss:
            stepper = adapter.bench(point)
            timing = measure(stepper, job["min_time"], job["repeats"])
        peak = stepper.device_peak()
        _emit({**row, "status": "ok", "reason": "", **timing.row(),
               "peak_mem_bytes": peak if peak is not None else rss.peak,
               "mem_delta_bytes": None if peak is not None else rss.peak - rss.baseline,
               "threads": stepper.threads or _threads()})
    except Exception as exc:  # one variant failing (out of memory, a compiler missing) must not stop the rest
        last = traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[0][:300]
        _emit({**row, "status": "error", "reason": last})
    finally:
        del stepper
        gc.collect()


def _bare(opt: Any, n: int) -> float:
    """The hand-written loop: ``n`` calls of ``opt.step()`` timed with perf_counter, per step."""
    t0 = time.perf_counter()
    for _ in range(n):
        opt.step()
    return (time.perf_counter() - t0) / n


def _overhead_worker(request: dict) -> None:
    """The harness against a bare loop, torch foreach, in this process, as *paired* samples.

    On a shared machine the step time drifts by tens of percent within seconds, so two separate
    measurements cannot resolve 3%. Each pair is two adjacent samples (order alternating AB, BA),
    and the median of the paired ratios cancels the drift:

    * ``timer``: the harness's sample (`_block`: its step and sync callables, as `measure` takes
      them) against the bare loop on the *same* optimizer;
    * ``setup``: the harness-built optimizer (`Adapter.bench`: tensors, copies, arguments) against
      one written by hand, both timed by the bare loop;
    * ``control``: two identical hand-built optimizers, compared the same way: how far two sets of
      tensors differ by where their memory landed, with no harness involved;
    * ``figure``: `measure`'s reported median (under `PeakRss`, as a bench point) against the bare
      loop's median over the same period (unpaired: shown, not judged).
    """
    for size in request["sizes"]:
        _overhead_size(size, request)
        gc.collect()


def _overhead_size(size: int, request: dict) -> None:
    import torch

    from harness.adapters.torch_adapter import Foreach

    shapes = model_shapes(size)
    point = BenchPoint("torch.foreach", "foreach", "cpu", "float32", shapes, {"lr": 1e-3})
    stepper = Foreach().bench(point)
    mine = stepper.step.__self__  # the harness's optimizer (the foreach variant steps it directly)
    def by_hand():
        params = [torch.nn.Parameter(torch.randn(s)) for s in shapes.values()]
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        return torch.optim.RMSprop(params, lr=1e-3, foreach=True)

    hand, twin = by_hand(), by_hand()
    with PeakRss():
        figure = measure(stepper, request["min_time"], 7)
    n = max(1, round(0.02 / figure.median_s))  # ~20 ms samples
    _bare(hand, 3 * n)
    bare_figure = float(np.median([_bare(hand, n) for _ in range(figure.samples)]))
    base = {"n_params": sum(math.prod(s) for s in shapes.values()), "steps_per_sample": n,
            "threads": torch.get_num_threads(), "figure_s": figure.median_s, "figure_iqr_s": figure.iqr_s,
            "bare_figure_s": bare_figure}
    kinds = {"timer": ((lambda: _block(stepper, n) / n, mine), (lambda: _bare(mine, n), mine)),
             "setup": ((lambda: _bare(mine, n), mine), (lambda: _bare(hand, n), hand)),
             "control": ((lambda: _bare(twin, n), twin), (lambda: _bare(hand, n), hand))}
    for kind, sides in kinds.items():
        for pair in range(request["pairs"]):
            times = {}
            for side in ((0, 1) if pair % 2 == 0 else (1, 0)):
                sample, opt = sides[side]
                opt.step()  # untimed: its tensors back in cache, as in measure's back-to-back samples
                times[side] = sample()
            _emit({**base, "kind": kind, "pair": pair, "harness_s": times[0], "bare_s": times[1]})


def main(fd: int) -> int:
    global _FD
    _FD = fd
    request = channel.read_stdin_request().body
    if request.get("overhead"):
        _overhead_worker(request)
    else:
        _worker(request)
        from harness.base.fingerprint import dispatch

        channel.send(fd, "hello", {"dispatch": dispatch()})  # the frameworks its adapters imported
    return 0



__all__ = ["main"]
