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

**Modules.** `timer` (`measure` and its `Measurement`: raw samples, a frozen key, lazy
statistics, `merge`), `memory` (peak RSS), `roofline` (bytes per parameter, layouts, the copy
kernels), `suite` (TOML suites and the plan), `worker` (one per framework), `run` (the driver).

Workers run one at a time (a benchmark must not share the cores with another) with
each framework's default threading, unlike conformance runs (one thread each).
"""


from harness.base.measurement import Measurement
from harness.bench.roofline import (
    COPY_ADAPTERS,
    ITEMSIZE,
    NumpyCopy,
    TorchCopy,
    bytes_per_param,
    model_shapes,
    split_shapes,
)
from harness.bench.run import (
    POINT_KEY,
    THROUGHPUT_COLUMNS,
    BenchResult,
    Prepared,
    overhead_summary,
    prepare,
    run_bench,
    run_overhead,
)
from harness.bench.suite import BenchEntry, BenchError, BenchSuite, Job, load_bench_suite, plan
from harness.bench.timer import measure

__all__ = [
    "COPY_ADAPTERS",
    "ITEMSIZE",
    "POINT_KEY",
    "THROUGHPUT_COLUMNS",
    "BenchEntry",
    "BenchError",
    "BenchResult",
    "BenchSuite",
    "Job",
    "Measurement",
    "NumpyCopy",
    "Prepared",
    "TorchCopy",
    "bytes_per_param",
    "load_bench_suite",
    "measure",
    "model_shapes",
    "overhead_summary",
    "plan",
    "prepare",
    "run_bench",
    "run_overhead",
    "split_shapes",
]
