"""The adapter registry: names, where each adapter lives, its preset and its process environment.

Nothing here imports a framework. An adapter (see `base.Adapter`) is created
inside a worker process from ``target`` (``"module:Class"`` or ``"module:factory"``);
adapters with the same module and environment share one worker process.

User-supplied adapters join the registry on first use, by entry point (group
``rmsprop_harness.adapters``, name -> ``package.module:factory``) or by target
(``--adapter package.module:factory``). Their module is imported only in a
subprocess (`harness.worker.describe`), which reports the class attributes the
driver needs: name, preset, family, env and device kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reference.errors import InputKeyError

from .base import STATE_KINDS, Adapter, BenchPoint, Snapshot, Stepper, Task

__all__ = ["ADAPTERS", "BUILTIN", "ENTRY_POINT_GROUP", "ONE_THREAD", "STATE_KINDS", "Adapter", "AdapterInfo",
           "BenchPoint", "Snapshot", "Stepper", "Task",
           "entry_points", "register_user_adapter", "resolve"]

ENTRY_POINT_GROUP = "rmsprop_harness.adapters"

# Conformance runs are single-threaded per worker: the frameworks otherwise fight over
# the cores, and elementwise results do not depend on the thread count.
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


@dataclass(frozen=True)
class AdapterInfo:
    """Where an adapter lives, which preset interprets its arguments and the environment it needs."""

    name: str
    target: str  # "module:Class"
    preset: str
    family: str  # the key of a case's native arguments shared by related adapters ([case.args.<family>])
    env: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ("cpu", "gpu")  # where it can run at all; `devices = "auto"` picks from these

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def worker_key(self) -> tuple:
        """Adapters with equal keys run in one worker process."""
        return (self.module, tuple(sorted(self.env.items())))


def _info(name: str, target: str, preset: str, family: str, devices: tuple[str, ...] = ("cpu", "gpu"),
          **env: str) -> AdapterInfo:
    return AdapterInfo(name, target, preset, family, {**ONE_THREAD, **env}, devices)


_T, _K, _TF = "harness.adapters.torch_adapter", "harness.adapters.keras_adapter", "harness.adapters.tf_adapter"
ADAPTERS: dict[str, AdapterInfo] = {
    a.name: a
    for a in (
        _info("torch.single", f"{_T}:Single", "torch", "torch"),
        _info("torch.foreach", f"{_T}:Foreach", "torch", "torch"),
        _info("torch.capturable", f"{_T}:Capturable", "torch", "torch", ("gpu",)),
        _info("keras.tensorflow", f"{_K}:KerasTensorflow", "keras", "keras", KERAS_BACKEND="tensorflow"),
        _info("keras.jax", f"{_K}:KerasJax", "keras_jax", "keras", KERAS_BACKEND="jax", JAX_ENABLE_X64="1"),
        _info("keras.torch", f"{_K}:KerasTorch", "keras_torch", "keras", KERAS_BACKEND="torch"),
        _info("tf_keras", f"{_TF}:TFKeras", "tf_keras", "tf_keras"),
        _info("tf_keras_legacy", f"{_TF}:TFKerasLegacy", "tf_keras_legacy", "tf_keras_legacy"),
        _info("tf1", f"{_TF}:TF1", "tf1", "tf1"),
        _info("tf1.function", f"{_TF}:TF1Function", "tf1", "tf1"),
        _info("tf.raw", f"{_TF}:TFRaw", "tf_raw", "tf_raw"),
        _info("optax", "harness.adapters.optax_adapter:Optax", "optax", "optax", JAX_ENABLE_X64="1"),
    )
}


BUILTIN = frozenset(ADAPTERS)
_USER_TARGETS: dict[str, str] = {}  # target -> registered name


def entry_points() -> dict[str, str]:
    """Installed user adapters: entry-point name -> ``"module:factory"``."""
    from importlib.metadata import entry_points as installed

    return {ep.name: ep.value for ep in installed(group=ENTRY_POINT_GROUP)}


def register_user_adapter(target: str, name: str | None = None) -> AdapterInfo:
    """Describe ``target`` (``"package.module:factory"``) in a subprocess and add it to `ADAPTERS`.

    ``name`` (an entry point's name) overrides the adapter's own ``name``. `KeyError` with
    one line when the target cannot be imported, is not an adapter, or clashes with a name."""
    if target in _USER_TARGETS and (name is None or _USER_TARGETS[target] == name):
        return ADAPTERS[_USER_TARGETS[target]]
    from ..worker import describe

    meta = describe(target, {**ONE_THREAD})
    name = name or meta["name"]
    if name in ADAPTERS and ADAPTERS[name].target != target:
        raise InputKeyError(f"adapter {target}: its name {name!r} is already taken by {ADAPTERS[name].target}")
    info = AdapterInfo(name, target, meta["preset"], meta["family"], {**ONE_THREAD, **meta["env"]},
                       tuple(meta["devices"]))
    ADAPTERS[name] = info
    _USER_TARGETS[target] = name
    return info


def resolve(patterns: list[str], known: list[str] | None = None, targets: bool = True) -> list[str]:
    """Adapter names matching ``patterns``: a full name (``torch.single``), a family prefix
    (``torch`` -> ``torch.single``, ``torch.foreach``, ...), an installed entry point's name or
    (``targets``) a ``package.module:factory`` target (both registered on first use). `KeyError`
    names an unknown one. Suites pass ``targets=False``: a suite file never makes the harness
    import a module the user did not name on the command line."""
    out: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise InputKeyError(f"adapter {pattern!r}: an empty name names no adapter")
        names = list(ADAPTERS) if known is None else known
        hits = [a for a in names if a == pattern or a.startswith(pattern + ".")]
        if not hits and ":" in pattern and not targets:
            raise InputKeyError(f"adapter {pattern!r} is a Python target: suites name adapters (built-in or installed "
                           "entry points); give a package.module:factory target on the command line with --adapter")
        if not hits and known is None:
            hits = _user(pattern)
        if not hits:
            plugins = sorted(entry_points())
            extra = f"; installed entry points: {', '.join(plugins)}" if plugins else ""
            raise InputKeyError(f"unknown adapter {pattern!r}; known: {', '.join(names)}{extra} "
                           "(or give package.module:factory)")
        out += [h for h in hits if h not in out]
    return out


def _user(pattern: str) -> list[str]:
    if ":" in pattern:
        return [register_user_adapter(pattern).name]
    plugins = entry_points()
    if pattern in plugins:
        return [register_user_adapter(plugins[pattern], pattern).name]
    return []
