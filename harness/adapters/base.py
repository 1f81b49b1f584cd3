"""The adapter protocol: what every framework adapter implements (no framework imports here).

An adapter drives one real optimizer over a `Task` and yields a `Snapshot` (the
parameters and the optimizer state, as float64) at each recorded step. It runs
inside a worker process (`harness.conformance.worker`); the framework is imported only inside
its adapter module.

State is reported under the reference's names so it can be compared directly:

* ``nu``: the mean square (torch ``square_avg``, Keras ``velocity``, TF ``rms``, optax ``nu``);
* ``mu``: the mean gradient of centered RMSprop (``grad_avg``, ``average_gradient``, ``mg``, ``mu``);
* ``trace``: the momentum buffer in the reference's sign convention (optax's trace
  holds the negated, lr-scaled update and is flipped back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from harness.base.host import package_version
from harness.base.streams import GradientStream, Shapes, StreamSpec, native
from reference.trajectory import STATE_KINDS  # noqa: F401  (re-exported: the names a Snapshot's state uses)


@dataclass(kw_only=True)
class Task:
    """One run: an adapter, native optimizer arguments, a gradient stream, a dtype and a device."""

    adapter: str
    kwargs: dict[str, Any]
    stream: StreamSpec
    shapes: Shapes
    params0: dict[str, np.ndarray]  # float64, before rounding to the run dtype
    steps: int
    dtype: str = "float64"
    device: str = "cpu"
    record_steps: tuple[int, ...] = ()
    lrs: np.ndarray | None = None  # per-step learning rate (a schedule), float64
    optional_device: bool = False  # picked by `devices = "auto"`: absent means "no row", not "skipped"
    timeout: float = 600.0

    def initial(self) -> dict[str, np.ndarray]:
        """Initial parameters as NumPy arrays the framework converts to ``dtype`` exactly."""
        return {n: native(p, self.dtype) for n, p in self.params0.items()}

    def gradients(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(t, grads)`` for t = 1..steps, in the run dtype, generated chunk by chunk."""
        return enumerate(GradientStream(self.stream, self.shapes).steps(self.steps, self.dtype, as_native=True), 1)

    def lr(self, t: int) -> float | None:
        """The learning rate of 1-based step t when the task has a schedule."""
        return None if self.lrs is None else float(self.lrs[t - 1])


@dataclass
class Snapshot:
    """Parameters and optimizer state after step ``step`` (1-based), float64."""

    step: int
    params: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class BenchPoint:
    """One throughput measurement: an adapter's variant on a device and dtype, over ``shapes``."""

    adapter: str
    variant: str
    device: str
    dtype: str
    shapes: dict[str, tuple[int, ...]]
    kwargs: dict[str, Any]
    seed: int = 0

    def arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Seeded initial parameters and one gradient per tensor, generated directly in the run dtype
        (float32 for the narrow ones; a benchmark at 1e8 parameters must not make float64 copies)."""
        dtype = np.float64 if self.dtype == "float64" else np.float32
        params, grads = {}, {}
        for i, (n, shape) in enumerate(self.shapes.items()):
            rng = np.random.default_rng([self.seed, i])
            params[n] = rng.standard_normal(shape, dtype=dtype)
            grads[n] = rng.standard_normal(shape, dtype=dtype) * dtype(1e-3)
        return params, grads


@dataclass
class Stepper:
    """A prepared optimizer step for the timer: ``step()`` enqueues one step, ``sync()`` waits until
    the device has finished every step enqueued so far; ``device_peak()`` is the peak device memory
    in bytes since the stepper was built (None on the CPU, where the worker samples its RSS)."""

    step: Callable[[], Any]
    sync: Callable[[], Any] = lambda: None
    device_peak: Callable[[], int | None] = lambda: None
    threads: int | None = None  # threads the step uses when known (default: the framework's / the cores)
    # seconds for n steps measured by the device itself (CUDA events around the enqueued steps), when the
    # framework offers them; the timer then reports device time instead of the host's perf_counter
    device_time: Callable[[int], float] | None = None


class Adapter:
    """Base class: subclasses set the class attributes and implement `available` and `run`.

    A user-supplied adapter (see docs/adapters.md) also sets ``preset``: the semantics it claims,
    which names the arguments it receives (``task.kwargs``, from ``args.<family>`` of a case
    or translated from a case's ``spec``) and the reference it is judged against. ``"spec"``
    means `RMSpropSpec`'s own knobs; ``"torch"``, ``"keras"``, ... a framework's arguments.
    """

    name: ClassVar[str]
    framework: ClassVar[str]  # the Python package whose version is reported
    dtypes: ClassVar[tuple[str, ...]] = ("float32", "float64")
    preset: ClassVar[str] = "spec"  # user adapters: the semantics and argument names (reference.presets)
    family: ClassVar[str | None] = None  # which args.<family> of a case it takes; default: the preset's name
    env: ClassVar[dict[str, str]] = {}  # environment its worker process needs (set before any import)
    device_kinds: ClassVar[tuple[str, ...]] = ("cpu", "gpu")  # where it can run at all

    def available(self) -> str | None:
        """None when the adapter can run here, else the reason it cannot."""
        raise NotImplementedError

    def devices(self) -> list[str]:
        """Devices present and usable: ``cpu`` and, when visible, ``gpu``."""
        return ["cpu"]

    def device_name(self, device: str) -> str:
        return device

    def versions(self) -> dict[str, str | None]:
        return {self.framework: package_version(self.framework)}

    def unsupported(self, task: Task) -> str | None:
        """``"unsupported: <knob>"`` when the framework cannot run this task as asked."""
        if task.dtype not in self.dtypes:
            return f"unsupported: dtype={task.dtype} ({self.name} runs {', '.join(self.dtypes)})"
        return None

    def run(self, task: Task) -> Iterator[Snapshot]:
        raise NotImplementedError

    def bench_variants(self, device: str) -> dict[str, str]:
        """Benchmark variants on ``device``: name -> what it is (``rmsprop-harness bench``)."""
        return {}

    def bench(self, point: BenchPoint) -> Stepper:
        """A `Stepper` running ``point.variant`` with ``point.kwargs`` over ``point.arrays()``."""
        raise NotImplementedError(f"{self.name} has no benchmark")


def as_float64(x: Any) -> np.ndarray:
    """A framework array (already on the host) as a float64 NumPy copy."""
    return np.array(x, dtype=np.float64, copy=True)
