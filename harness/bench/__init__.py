"""`rmsprop-harness bench`: optimizer-step throughput of every adapter against the memory-bandwidth roofline.

**What is timed.** Only the optimizer step: each adapter builds its parameters,
gradients and optimizer once (`Adapter.bench` -> `Stepper`) in its best practice,
labelled as a *variant* (torch for-loop / foreach / ``torch.compile`` / CUDA graph;
optax jit with and without buffer donation; Keras eager / ``tf.function`` / XLA;
the fused TF kernel; ...). The gradients stay fixed; nothing else runs in the loop.

**How** (`measure`, after ``torch.utils.benchmark``'s ``blocked_autorange``):

1. the first step is timed alone (with device synchronisation): it includes tracing
   and compilation; ``compile_s`` = first step - median step;
2. warm-up in blocks until two consecutive blocks agree within 10% and at least
   ``min_warmup`` (0.1 s) has passed (at most ``max_warmup``, 3 s): caches,
   allocators, lazily allocated state and JIT tiers settle;
3. a block size ``n`` is chosen so one sample lasts ``min_time / repeats``; samples
   of ``n`` steps followed by one ``sync()`` (``torch.cuda.synchronize``,
   ``block_until_ready``) are taken until there are ``repeats`` of them *and*
   ``min_time`` has passed. Per-step time = sample / n; reported as the median with
   the interquartile range. Every sample is kept (``sample_s``, a list per point): the
   regression gate (`harness.gate`) compares the distributions, not just the medians.

**Bytes and roofline.** An RMSprop step must read p, g, v and write p, v: 5 values
per parameter (20 bytes in float32), 2 more each for a momentum buffer and for
centered's mean gradient (`bytes_per_param`, from the adapter's semantics). The
same run measures plain memory kernels at every size, dtype and device: a copy
(``np.copyto`` in one thread; ``Tensor.copy_`` with torch's threads, device to device
on a GPU; read + write) and an in-place add (``a += b``: read two, write one). An
optimizer updates in place, and a copy to a separate buffer also pays write-allocate
traffic (each destination line is read before it is overwritten), so on a CPU the
in-place add is the fairer ceiling. The roofline is the fastest of these kernels at
that size, and ``roofline_fraction`` = effective GB/s / roofline GB/s (the
``copy_gb_per_s`` column).

**Memory.** On the CPU the worker resets its RSS high-water mark before a point is
built and reads it after the measurement (`PeakRss`; no sampling thread perturbs the
timing): ``peak_mem_bytes`` (the process, framework runtime included) and
``mem_delta_bytes`` (above the RSS before the point). On a GPU: torch's
``max_memory_allocated``, JAX's ``peak_bytes_in_use``.

Workers run one at a time (a benchmark must not share the cores with another) with
each framework's default threading, unlike conformance runs (one thread each).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.adapters import ADAPTERS, ONE_THREAD, AdapterInfo, resolve
from harness.adapters.base import Adapter, BenchPoint, Stepper
from harness.adapters.torch_adapter import TorchDevices  # imports torch only inside its methods
from harness.base import environment, options, schema
from harness.base.limits import MAX_TENSORS
from harness.base.runfolder import RunFolder
from harness.process import channel, spawn
from reference import RMSpropSpec, presets
from reference.errors import InputError, InputValueError
from reference.translate import KNOBS, Unsupported, knob_args

THROUGHPUT_COLUMNS = schema.THROUGHPUT
POINT_KEY = ("bench", "adapter", "variant", "device", "dtype", "n_params", "n_tensors", "layout")
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
BENCH_KEYS = ("name", "description", "adapters", "variants", "sizes", "tensors", "dtypes", "devices", "settings",
              "min_time", "repeats")
TOP_KEYS = ("name", "description", "rounds", "threads", "bench")


class BenchError(InputValueError):
    """A bench suite or option that cannot be used; one line."""


# ------------------------------------------------------------------ bytes and layouts
def bytes_per_param(spec: RMSpropSpec | None, dtype: str, variant: str = "copy") -> int:
    """Bytes one step must move per parameter: read p, g, v, write p, v; +2 values for a
    momentum buffer, +2 for centered's mean gradient. Without a spec, the roofline kernels:
    a copy reads and writes (2 values), an in-place add reads two and writes one (3)."""
    if spec is None:
        return (3 if variant == "add" else 2) * ITEMSIZE[dtype]
    values = 5 + (2 if spec.momentum > 0 or spec.nesterov else 0) + (2 if spec.centered else 0)
    return values * ITEMSIZE[dtype]


def model_shapes(n_params: int) -> dict[str, tuple[int, ...]]:
    """About ``n_params`` parameters as a small MLP would hold them: 4 square weight matrices and
    their biases (8 tensors), the last weight trimmed so the total is exact."""
    width = int((math.sqrt(1 + n_params) - 1) / 2)  # 4*(w*w + w) <= n_params
    if width < 1:  # fewer than 8 parameters: no room for layers
        return {"weight": (n_params,)}
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(4):
        shapes[f"layer{layer}.weight"] = (width, width)
        shapes[f"layer{layer}.bias"] = (width,)
    rest = n_params - 4 * (width * width + width)
    if rest > 0:
        shapes["head.weight"] = (rest,)
    return shapes


def split_shapes(n_params: int, n_tensors: int) -> dict[str, tuple[int, ...]]:
    """``n_params`` in ``n_tensors`` equal 1-D tensors (the per-tensor overhead experiment)."""
    base, extra = divmod(n_params, n_tensors)
    return {f"t{i}": (base + (1 if i < extra else 0),) for i in range(n_tensors)}


# ------------------------------------------------------------------------ the timer
@dataclass
class Timing:
    median_s: float
    q1_s: float
    q3_s: float
    samples: int
    steps_per_sample: int
    first_step_s: float
    warmup_s: float
    sample_s: tuple[float, ...] = ()  # every sample's per-step time, in order (what `harness.gate` compares)

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s


def _block(stepper: Stepper, n: int) -> float:
    step, sync = stepper.step, stepper.sync
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return time.perf_counter() - start


def measure(stepper: Stepper, min_time: float = 0.2, repeats: int = 7, max_warmup: float = 3.0,
            min_warmup: float = 0.1) -> Timing:
    """Per-step time of ``stepper`` (see the module docstring): median and quartiles of ``repeats``
    or more samples, each a block of steps ending in one synchronisation."""
    stepper.sync()
    first = _block(stepper, 1)
    # warm-up: blocks of growing size until two consecutive per-step times agree within 10%
    warm_start, n, previous = time.perf_counter(), 1, None
    while True:
        per_step = _block(stepper, n) / n
        settled = previous is not None and abs(per_step - previous) <= 0.1 * previous
        if settled and time.perf_counter() - warm_start >= min_warmup:
            break
        if time.perf_counter() - warm_start > max_warmup:
            break
        previous = per_step
        n = max(1, min(n * 2, int(0.05 / max(per_step, 1e-9)) or 1))
    warmup = time.perf_counter() - warm_start
    n = max(1, round(min_time / repeats / max(per_step, 1e-9)))
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - started < min_time:
        samples.append(_block(stepper, n) / n)
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return Timing(float(median), float(q1), float(q3), len(samples), n, first, warmup, tuple(samples))


class PeakRss:
    """Peak resident set size of this process during the block. Linux resets the high-water mark
    (``echo 5 > /proc/self/clear_refs``) and reports it (``VmHWM``) at no cost while timing; where
    that is unavailable a thread samples the RSS every 2 ms instead (a small perturbation)."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.exact = False

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = _hwm() is not None
        except OSError:
            self.exact = False
        if not self.exact:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, _hwm() or 0, _rss())


def _hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory(device: str) -> int | None:
    """Bytes that can still be allocated (CPU: MemAvailable); None when unknown."""
    if device != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


# ------------------------------------------------------------------ copy "adapters"
class NumpyCopy(Adapter):
    """``np.copyto(dst, src)``: the single-threaded copy bandwidth of the host."""

    name = "copy.numpy"
    framework = "numpy"

    def available(self) -> str | None:
        return None

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"copy": "np.copyto(dst, src), one thread",
                "add": "np.add(a, b, out=a), one thread: in place, as an optimizer updates"} if device == "cpu" else {}

    def bench(self, point: BenchPoint) -> Stepper:
        n = sum(math.prod(s) for s in point.shapes.values())
        src = np.random.default_rng(point.seed).standard_normal(n).astype(np.dtype(_np_dtype(point.dtype)))
        dst = np.zeros_like(src)
        if point.variant == "add":
            return Stepper(lambda: np.add(dst, src, out=dst), threads=1)
        return Stepper(lambda: np.copyto(dst, src), threads=1)


class TorchCopy(TorchDevices):
    """``dst.copy_(src)`` with torch's threads on the CPU; device to device on a GPU."""

    name = "copy.torch"

    def bench_variants(self, device: str) -> dict[str, str]:
        return {"copy": "dst.copy_(src) (torch's intra-op threads on the CPU; device to device on a GPU)",
                "add": "a.add_(b): in place, as an optimizer updates (no write-allocate traffic)"}

    def bench(self, point: BenchPoint) -> Stepper:
        import torch

        n = sum(math.prod(s) for s in point.shapes.values())
        device = torch.device("cuda" if point.device == "gpu" else "cpu")
        src = torch.randn(n, device=device, dtype=torch.float32).to(getattr(torch, point.dtype))
        dst = torch.zeros_like(src)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        if point.variant == "add":
            return Stepper(lambda: dst.add_(src), sync)
        return Stepper(lambda: dst.copy_(src), sync)


def _np_dtype(dtype: str) -> str:
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def _bench_env(env: dict[str, str], threads: int | None = None) -> dict[str, str]:
    """A framework's worker environment for benchmarks: its own (KERAS_BACKEND, ...) without the
    one-thread pinning of conformance runs: each framework runs with its default threading, or
    with ``threads`` intra-op threads (a gate suite on a shared machine pins 1: a neighbour that
    takes a core then slows a one-thread step a little, a two-thread step a lot)."""
    out = {k: v for k, v in env.items() if k not in ONE_THREAD}
    if threads is not None:
        n = str(threads)
        xla = ("--xla_cpu_multi_thread_eigen=false " if threads == 1 else "") + f"intra_op_parallelism_threads={n}"
        out |= {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n,
                "TF_NUM_INTEROP_THREADS": "1", "XLA_FLAGS": xla, "RMSPROP_HARNESS_BENCH_THREADS": n}
    return out


COPY_ADAPTERS = {
    "copy.numpy": AdapterInfo("copy.numpy", "harness.bench:NumpyCopy", "spec", "copy", {}, ("cpu",)),
    "copy.torch": AdapterInfo("copy.torch", "harness.bench:TorchCopy", "spec", "copy", {}, ("cpu", "gpu")),
}


def _info(name: str) -> AdapterInfo:
    return COPY_ADAPTERS.get(name) or ADAPTERS[name]


# ------------------------------------------------------------------------ suites
@dataclass(frozen=True)
class BenchEntry:
    name: str
    adapters: tuple[str, ...]
    variants: tuple[str, ...] | None
    sizes: tuple[int, ...]
    tensors: tuple[int, ...] | None  # None: the model layout; else equal 1-D tensors per count
    dtypes: tuple[str, ...]
    devices: tuple[str, ...] | str
    settings: dict[str, Any]
    min_time: float
    repeats: int
    description: str = ""

    def layouts(self) -> list[tuple[str, dict[str, tuple[int, ...]]]]:
        out = []
        for size in self.sizes:
            if self.tensors is None:
                out.append(("model", model_shapes(size)))
            else:
                out += [(f"{k} x {size // k}", split_shapes(size, k)) for k in self.tensors]
        return out

    def kwargs(self, adapter: str) -> dict[str, Any]:
        """The adapter's own constructor arguments for the entry's settings (`knob_args`)."""
        if adapter in COPY_ADAPTERS:
            return {}
        preset = ADAPTERS[adapter].preset
        out = dict(presets.REQUIRED_DEFAULTS.get(preset, {}))
        for knob, value in self.settings.items():
            out |= knob_args(preset, knob, value)
        return out


@dataclass(frozen=True)
class BenchSuite:
    name: str
    description: str
    path: Path
    entries: tuple[BenchEntry, ...]
    rounds: int = 1  # the whole suite is measured this many times, each round in fresh workers
    threads: int | None = None  # intra-op threads per framework; None: each framework's default


SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"


def load_bench_suite(name_or_path: str | Path) -> BenchSuite:
    """A built-in bench suite by name (``perf``) or a TOML file with ``[[bench]]`` tables."""
    path = Path(name_or_path)
    if not path.suffix and (SUITES_DIR / f"{name_or_path}.toml").is_file():
        path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise BenchError(f"{name_or_path}: no such bench suite file or built-in suite (built-in: perf)")
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not valid TOML ({exc})") from None
    fail = lambda where, problem: BenchError(f"{path}: {where}: {problem}")  # noqa: E731
    for key in data:
        if key not in TOP_KEYS:
            raise fail(key, "unknown key" + ("; a conformance suite is run by rmsprop-harness run" if key in
                                            ("case", "defaults", "parity") else f" (allowed: {', '.join(TOP_KEYS)})"))
    tables = data.get("bench")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise fail("bench", "expected one or more [[bench]] tables")
    entries = []
    for i, t in enumerate(tables):
        where = f"bench[{i}]"
        for key in t:
            if key not in BENCH_KEYS:
                raise fail(f"{where}.{key}", f"unknown key (allowed: {', '.join(BENCH_KEYS)})")
        try:
            adapters = tuple(resolve(list(t.get("adapters", ["torch", "optax"])), targets=False))
        except (KeyError, TypeError) as exc:
            raise fail(f"{where}.adapters", exc.args[0] if exc.args else "expected adapter names") from None
        sizes = t.get("sizes", [1000, 100_000, 10_000_000])
        if not isinstance(sizes, list) or not sizes or not all(isinstance(s, int | float) and not isinstance(
                s, bool) and 1 <= s <= 1e10 and float(s).is_integer() for s in sizes):
            raise fail(f"{where}.sizes", f"expected whole numbers of parameters >= 1, got {sizes!r}")
        tensors = t.get("tensors")
        if tensors is not None and (not isinstance(tensors, list) or not tensors or not all(
                isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= min(MAX_TENSORS, *map(int, sizes))
                for k in tensors)):
            raise fail(f"{where}.tensors", f"expected a list of tensor counts in [1, {MAX_TENSORS}], none above the "
                       f"smallest size, got {tensors!r}")
        dtypes = t.get("dtypes", ["float32"])
        if not isinstance(dtypes, list) or not all(d in ITEMSIZE for d in dtypes):
            raise fail(f"{where}.dtypes", f"expected a list from {', '.join(ITEMSIZE)}, got {dtypes!r}")
        devices = t.get("devices", "auto")
        if devices != "auto" and (not isinstance(devices, list) or not all(d in ("cpu", "gpu") for d in devices)):
            raise fail(f"{where}.devices", f'expected "auto" or a list from cpu, gpu, got {devices!r}')
        settings = t.get("settings", {})
        if not isinstance(settings, dict) or any(k not in KNOBS for k in settings):
            raise fail(f"{where}.settings", f"expected a table of {', '.join(KNOBS)}, got {settings!r}")
        min_time, repeats = t.get("min_time", 0.2), t.get("repeats", 7)
        if not isinstance(min_time, int | float) or not 0 < min_time <= 60:
            raise fail(f"{where}.min_time", f"expected seconds in (0, 60], got {min_time!r}")
        if not isinstance(repeats, int) or isinstance(repeats, bool) or not 3 <= repeats <= 1000:
            raise fail(f"{where}.repeats", f"expected an integer in [3, 1000], got {repeats!r}")
        variants = t.get("variants")
        if variants is not None and (not isinstance(variants, list) or not variants
                                     or not all(isinstance(v, str) and v for v in variants)):
            raise fail(f"{where}.variants", f"expected a list of variant names, got {variants!r}")
        if not isinstance(t.get("name", ""), str) or not isinstance(t.get("description", ""), str):
            raise fail(f"{where}.name", "expected strings for name and description")
        entry = BenchEntry(str(t.get("name", f"bench{i}")), adapters, None if variants is None else tuple(variants),
                           tuple(int(s) for s in sizes), None if tensors is None else tuple(tensors), tuple(dtypes),
                           devices if devices == "auto" else tuple(devices), dict(settings), float(min_time),
                           repeats, str(t.get("description", "")))
        for adapter in adapters:
            try:
                presets.get(ADAPTERS[adapter].preset)(**entry.kwargs(adapter))
            except Unsupported as exc:
                raise fail(f"{where}.settings", f"{adapter}: {exc}") from None
            except InputError as exc:
                raise fail(f"{where}.settings", f"{adapter}: {exc}") from None
        entries.append(entry)
    rounds = data.get("rounds", 1)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= 100:
        raise fail("rounds", f"expected an integer in [1, 100], got {rounds!r}")
    threads = data.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 1024):
        raise fail("threads", f"expected an integer >= 1, got {threads!r}")
    return BenchSuite(str(data.get("name", path.stem)), str(data.get("description", "")), path, tuple(entries),
                      rounds, threads)


# ------------------------------------------------------------------------ planning
@dataclass
class Job:
    """What one worker measures for one adapter: every variant x device x dtype x layout."""

    adapter: str
    target: str  # "module:Class" (the worker cannot see adapters registered only in the driver)
    family: str
    devices_allowed: list[str]  # where the adapter can run at all
    bench: str
    kwargs: dict[str, Any]
    variants: list[str] | None
    devices: list[str] | str
    dtypes: list[str]
    layouts: list[tuple[str, dict[str, list[int]]]]
    min_time: float
    repeats: int


def plan(suite: BenchSuite, adapters: list[str] | None = None, devices: list[str] | None = None,
         dtypes: list[str] | None = None, min_time: float | None = None, repeats: int | None = None) -> list[Job]:
    """One job per entry and adapter (filtered), plus the copy jobs for every size, dtype and device."""
    wanted = set(resolve(adapters)) if adapters else None
    jobs: list[Job] = []
    sizes: dict[int, set[str]] = {}
    for entry in suite.entries:
        layouts = [(label, {n: list(s) for n, s in shapes.items()}) for label, shapes in entry.layouts()]
        for adapter in entry.adapters:
            if wanted is not None and adapter not in wanted:
                continue
            info = ADAPTERS[adapter]
            jobs.append(Job(adapter, info.target, info.family, list(info.devices), entry.name, entry.kwargs(adapter),
                            None if entry.variants is None
                            else list(entry.variants), devices or entry.devices, dtypes or list(entry.dtypes),
                            layouts, min_time or entry.min_time, repeats or entry.repeats))
            for size in entry.sizes:
                sizes.setdefault(size, set()).update(dtypes or entry.dtypes)
    if not jobs:
        raise BenchError(f"no benchmark in suite {suite.name!r} matches --adapter {','.join(adapters or [])}")
    copy_layouts = [(f"copy {n}", {"x": [n]}) for n in sorted(sizes)]
    copy_dtypes = sorted({d for ds in sizes.values() for d in ds})
    for name, info in COPY_ADAPTERS.items():
        jobs.insert(0, Job(name, info.target, info.family, list(info.devices), "roofline", {}, None,
                           devices or "auto", copy_dtypes, copy_layouts, min_time or 0.2, repeats or 7))
    return jobs


# ------------------------------------------------------------------------ the worker
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
    from harness.conformance.worker import instantiate as _instantiate

    for job in request["jobs"]:
        base = {"bench": job["bench"], "adapter": job["adapter"], "framework": job["family"]}
        try:
            adapter: Adapter = _instantiate(job["target"])
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
        _emit({**row, "status": "ok", "reason": "", "median_s": timing.median_s, "q1_s": timing.q1_s,
               "q3_s": timing.q3_s, "iqr_s": timing.iqr_s, "samples": timing.samples,
               "steps_per_sample": timing.steps_per_sample, "first_step_s": timing.first_step_s,
               "compile_s": max(0.0, timing.first_step_s - timing.median_s),
               "peak_mem_bytes": peak if peak is not None else rss.peak,
               "mem_delta_bytes": None if peak is not None else rss.peak - rss.baseline,
               "threads": stepper.threads or _threads(), "sample_s": list(timing.sample_s)})
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


def _worker_main(fd: int) -> int:
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


# ------------------------------------------------------------------------ the driver
@dataclass
class BenchResult:
    throughput: pd.DataFrame
    env: dict[str, Any]
    out: Path | None = None
    overhead: pd.DataFrame | None = None
    devices: list[str] | None = None  # the devices asked for explicitly

    @property
    def unmeasured(self) -> list[str]:
        """Explicitly asked devices on which nothing was measured (``--device gpu`` without a GPU)."""
        tp = self.throughput
        return [d for d in self.devices or [] if d != "auto" and ("device" not in tp or
                                                                 tp[(tp["device"] == d) & (tp["status"] != "skipped")]
                                                                 .empty)]


def _spawn(env_extra: dict[str, str], request: dict, timeout: float,
           on_row: Callable[[dict], None], on_hello: Callable[[dict], None] | None = None) -> tuple[int | None, str]:
    """Run one bench worker; rows go to ``on_row`` as they arrive. (exit code or None on timeout, log tail)."""
    worker = spawn.Worker("harness.bench", [], env_extra, channel.encode("request", request))
    reader = channel.Reader(worker.read_fd)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            message = reader.read(deadline, 0)
            if message.kind == "row":
                on_row(message.body)
            elif message.kind == "hello" and on_hello is not None:
                on_hello(message.body)
    except TimeoutError:
        timed_out = True
        worker.kill()
    except channel.PeerClosed:
        pass
    except channel.ChannelError as exc:
        worker.kill()
        worker.tail.append(f"the worker sent a malformed message ({exc})")
    finally:
        code = worker.close()
    return (None if timed_out else code), worker.last_line()


_NUMBERS = ("n_params", "n_tensors", "median_s", "q1_s", "q3_s", "iqr_s", "samples", "steps_per_sample",
            "first_step_s", "compile_s", "peak_mem_bytes", "mem_delta_bytes", "threads")
_TEXTS = ("bench", "adapter", "variant", "framework", "device", "device_name", "dtype", "layout", "status", "reason",
          "description")


def _clean_row(row: Any) -> dict:
    """A row as the worker sent it, checked: known fields of the right kinds, else an error row (a worker runs
    adapter code; the driver trusts nothing it sends)."""
    if not isinstance(row, dict):
        return {"status": "error", "reason": "the worker sent a row that is not a table"}
    bad = [k for k in _NUMBERS if row.get(k) is not None and (isinstance(row[k], bool) or
                                                              not isinstance(row[k], int | float))]
    bad += [k for k in _TEXTS if row.get(k) is not None and not isinstance(row[k], str)]
    samples = row.get("sample_s")
    if samples is not None and (not isinstance(samples, list) or not all(isinstance(x, int | float) and
                                                                         not isinstance(x, bool) for x in samples)):
        bad.append("sample_s")
    clean = {k: v for k, v in row.items() if k in (*_NUMBERS, *_TEXTS, "sample_s")}
    if bad:
        return {**{k: clean.get(k) for k in ("bench", "adapter", "framework") if isinstance(clean.get(k), str)},
                "status": "error", "reason": f"malformed benchmark row ({', '.join(bad[:3])})"}
    if clean.get("status") not in ("ok", "error", "skipped", "unsupported"):
        clean = {**clean, "status": "error", "reason": f"unknown status {str(clean.get('status'))[:40]!r}"}
    return clean


def _pool(rows: list[dict]) -> list[dict]:
    """One row per point from its rounds: every round's samples pooled (median and quartiles of the
    pool), ``round_median_s`` each round's own median (the run-to-run noise the gate needs); a point
    that failed in any round keeps that round's status and reason."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in POINT_KEY), []).append(row)
    out = []
    for group in groups.values():
        rounds = len({r.get("round", 0) for r in group})
        bad = [r for r in group if r.get("status") != "ok"]
        if bad:
            first = dict(bad[0])
            if rounds > 1:
                first["reason"] = f"{first.get('reason', '')} (round {first.get('round', 0) + 1} of {rounds})"
            out.append({**first, "rounds": rounds})
            continue
        samples = [x for r in group for x in (r.get("sample_s") or [r["median_s"]])]
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        first_step = float(np.median([r["first_step_s"] for r in group]))
        out.append({**group[0], "median_s": float(median), "q1_s": float(q1), "q3_s": float(q3),
                    "iqr_s": float(q3 - q1), "samples": len(samples), "sample_s": samples,
                    "first_step_s": first_step, "compile_s": max(0.0, first_step - float(median)),
                    "peak_mem_bytes": max(r["peak_mem_bytes"] for r in group),
                    "mem_delta_bytes": None if group[0].get("mem_delta_bytes") is None else
                    max(r["mem_delta_bytes"] for r in group),
                    "round_median_s": [r["median_s"] for r in group], "rounds": rounds})
    return out


def _finish(rows: list[dict], suite: str, specs: dict[tuple, RMSpropSpec | None]) -> pd.DataFrame:
    """Rounds pooled (`_pool`); derived columns: bytes per parameter from the semantics, GB/s, the copy
    roofline and its fraction."""
    frame = pd.DataFrame(_pool(rows))
    for col in THROUGHPUT_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    frame["suite"] = suite
    frame["bytes_per_param"] = [bytes_per_param(specs.get((r.adapter, r.bench)), r.dtype, str(r.variant))
                                if isinstance(r.dtype, str) else np.nan for r in frame.itertuples()]
    frame["steps_per_s"] = 1.0 / frame["median_s"]
    frame["params_per_s"] = frame["n_params"] / frame["median_s"]
    frame["gb_per_s"] = frame["params_per_s"] * frame["bytes_per_param"] / 1e9
    copies = frame[(frame["framework"] == "copy") & (frame["status"] == "ok")]
    best = copies.groupby(["device", "dtype", "n_params"])["gb_per_s"].max()
    frame["copy_gb_per_s"] = [best.get((r.device, r.dtype, r.n_params), np.nan) for r in frame.itertuples()]
    frame["roofline_fraction"] = frame["gb_per_s"] / frame["copy_gb_per_s"]
    for col in ("n_params", "n_tensors", "samples", "steps_per_sample", "threads", "peak_mem_bytes",
                "mem_delta_bytes", "rounds"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    return frame[THROUGHPUT_COLUMNS]


def bench_environment(name: str, path: Path | None) -> dict[str, Any]:
    return environment.environment(memory_available_bytes=available_memory("cpu"),
                                   suite={"name": name, "path": str(path) if path else None})


def run_bench(suite: BenchSuite | str | Path = "perf", *, adapters: list[str] | None = None,
              devices: list[str] | None = None, dtypes: list[str] | None = None, min_time: float | None = None,
              repeats: int | None = None, out: str | Path | None = "reports/bench", timeout: float = 900.0,
              progress: Callable[[dict], None] | None = None, rounds: int | None = None,
              threads: int | None = None) -> BenchResult:
    """Run a bench suite; each framework's jobs in its own worker, one worker at a time; the whole
    suite ``rounds`` times (default: the suite's ``rounds``, 1), each round in fresh workers, so
    the samples of a point span the drift of a shared machine and the gate can see it."""
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)
    options.number(min_time, "--min-time", 0, 60, open_low=True)
    options.integer(repeats, "--repeats", 3, 1000)
    options.integer(rounds, "--rounds", 1, 100)
    options.integer(threads, "--threads", 1, 1024)
    if not isinstance(suite, BenchSuite):
        suite = load_bench_suite(suite)
    rounds = rounds or suite.rounds
    threads = threads or suite.threads
    jobs = plan(suite, adapters, devices, dtypes, min_time, repeats)
    specs: dict[tuple, RMSpropSpec | None] = {}
    folder = RunFolder(out, "bench", len(jobs) * rounds) if out is not None else None
    out_dir = None if folder is None else folder.path
    env = bench_environment(suite.name, suite.path)
    env["rounds"] = rounds
    env["threads"] = threads or "framework default"
    rows: list[dict] = []
    started = time.perf_counter()
    hellos: list[dict] = []
    last = [0.0]
    finished = [0]

    def flush(force: bool = False, complete: bool = False) -> None:
        if folder is None or (not force and time.monotonic() - last[0] < 2.0):
            return
        frame = _finish(rows, suite.name, specs) if rows else pd.DataFrame(columns=THROUGHPUT_COLUMNS)
        environment.finish(env, hellos, started)
        folder.publish({"throughput": frame}, env, finished[0], complete)
        last[0] = time.monotonic()

    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        info = _info(job.adapter)
        groups.setdefault((info.module, tuple(sorted(_bench_env(info.env, threads).items()))), []).append(job)
        if job.adapter not in COPY_ADAPTERS:
            specs[(job.adapter, job.bench)] = presets.get(info.preset)(**job.kwargs)
    complete = False
    flush(force=True)
    try:
        for rnd in range(rounds):
            for (_, env_items), group in groups.items():
                got: list[dict] = []

                def on_row(row: dict, got: list[dict] = got, rnd: int = rnd) -> None:
                    row = _clean_row(row)
                    row["round"] = rnd
                    got.append(row)
                    rows.append(row)
                    flush()
                    if progress is not None:
                        progress(row)

                code, tail = _spawn(dict(env_items), {"jobs": [asdict(j) for j in group]}, timeout, on_row,
                                    hellos.append)
                finished[0] += len(group)
                if code != 0:  # a crashed or killed worker: the jobs it did not report become error rows
                    why = "timed out" if code is None else f"worker exited with {code}"
                    done = {r["adapter"] for r in got}
                    lost = [j for j in group if j.adapter not in done] or [j for j in group if got and
                                                                             j.adapter == got[-1]["adapter"]]
                    for job in lost:
                        rows.append({"bench": job.bench, "adapter": job.adapter, "framework": job.family,
                                     "status": "error", "reason": f"{why}: {tail}", "round": rnd})
                    flush()
        complete = True
    except BaseException:
        spawn.kill_all()
        complete = False
        raise
    finally:
        flush(force=True, complete=complete)
        if folder is not None:
            folder.close()
    return BenchResult(_finish(rows, suite.name, specs) if rows else pd.DataFrame(columns=THROUGHPUT_COLUMNS), env,
                       out_dir, devices=devices)


def run_overhead(sizes: tuple[int, ...] = (1_000_000, 10_000_000), pairs: int = 300, min_time: float = 0.5,
                 out: str | Path | None = None) -> pd.DataFrame:
    """Paired samples of the harness against a bare loop (see `_overhead_worker`); ``ratio`` = harness / bare."""
    rows: list[dict] = []
    info = ADAPTERS["torch.foreach"]
    code, tail = _spawn(_bench_env(info.env), {"overhead": True, "sizes": list(sizes), "pairs": pairs,
                                               "min_time": min_time}, 900.0, rows.append)
    if code != 0 or not rows:
        raise BenchError(f"the overhead benchmark failed ({'timed out' if code is None else code}): {tail}")
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["harness_s"] / frame["bare_s"]
    if out is not None:
        from harness.base.runfolder import prepare_output, write_text

        write_text(prepare_output(out) / "overhead.csv", frame.to_csv(index=False))
    return frame


def overhead_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per size and kind: the median paired ratio with its quartiles, and the medians of both sides."""
    rows = []
    for (n, kind), g in frame.groupby(["n_params", "kind"]):
        q1, med, q3 = np.percentile(g["ratio"], [25, 50, 75])
        rows.append({"n_params": n, "kind": kind, "ratio": med, "ratio_q1": q1, "ratio_q3": q3, "pairs": len(g),
                     "harness_ms": g["harness_s"].median() * 1e3, "bare_ms": g["bare_s"].median() * 1e3,
                     "figure_ms": g["figure_s"].iloc[0] * 1e3, "bare_figure_ms": g["bare_figure_s"].iloc[0] * 1e3})
    return pd.DataFrame(rows)


__all__ = ["THROUGHPUT_COLUMNS", "BenchError", "BenchResult", "bytes_per_param", "load_bench_suite", "measure",
           "model_shapes", "run_bench", "run_overhead", "split_shapes"]
