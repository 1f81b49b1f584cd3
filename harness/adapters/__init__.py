"""The adapter registry: names, where each adapter lives, its preset and its process environment.

Built-in adapters are found through the implementation records (`reference.implementations`:
each lists the ``module:Class`` of the adapters that drive it); each adapter class declares its
own ``name``, ``preset``, ``family``, ``env`` and ``device_kinds``, and the registry reads them.
Importing an adapter module imports no framework (frameworks are imported inside its methods),
so the driver can read the classes. An adapter is created inside a worker process from its
target; adapters with the same module and environment share one worker process.

User-supplied adapters join the registry on first use, by entry point (group
``rmsprop_harness.adapters``, name -> ``package.module:factory``) or by target
(``--adapter package.module:factory``). Their module is imported only in a subprocess
(`harness.process.loading.describe`), which reports the same class attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field

from harness.adapters.base import STATE_KINDS, Adapter, BenchPoint, Snapshot, Stepper, Task
from harness.process.loading import attributes, describe, resolve_target
from reference import implementations
from reference.errors import InputKeyError

__all__ = ["ADAPTERS", "ALL", "BUILTIN", "ENTRY_POINT_GROUP", "ONE_THREAD", "STATE_KINDS", "Adapter", "AdapterInfo",
           "BenchPoint", "Snapshot", "Stepper", "Task",
           "entry_points", "register_user_adapter", "resolve"]

ENTRY_POINT_GROUP = "rmsprop_harness.adapters"
ALL = "all"  # the adapter pattern for every built-in adapter

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


def info(target: str, meta: dict) -> AdapterInfo:
    """An `AdapterInfo` from an adapter's described attributes (`harness.process.loading.attributes`)."""
    return AdapterInfo(name=meta["name"], target=target, preset=meta["preset"], family=meta["family"],
                       env={**ONE_THREAD, **meta["env"]}, devices=tuple(meta["devices"]))


def builtin_adapters() -> dict[str, AdapterInfo]:
    """Every adapter the implementation records list, read from its class attributes."""
    out: dict[str, AdapterInfo] = {}
    for record in implementations.all_records():
        for target in record.adapters:
            cls = resolve_target(target)
            meta = attributes(cls, implementations.names())
            if meta["preset"] != record.name:
                raise ValueError(f"{target} declares preset {meta['preset']!r} but is listed by {record.name!r}")
            out[meta["name"]] = info(target, meta)
    return out


class _Registry(MutableMapping):
    """The built-in adapters (read from the implementation records when first needed, and again when
    a record is registered) plus user adapters registered in this process."""

    def __init__(self) -> None:
        self._builtin: dict[str, AdapterInfo] = {}
        self._user: dict[str, AdapterInfo] = {}
        self._records: tuple[str, ...] | None = None

    def builtin(self) -> dict[str, AdapterInfo]:
        records = tuple(implementations.names())
        if records != self._records:
            self._builtin, self._records = builtin_adapters(), records
        return self._builtin

    def _all(self) -> dict[str, AdapterInfo]:
        return {**self.builtin(), **self._user}

    def __getitem__(self, name: str) -> AdapterInfo:
        return self._all()[name]

    def __setitem__(self, name: str, value: AdapterInfo) -> None:
        self._user[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self._user:
            raise KeyError(f"{name} is a built-in adapter (its implementation record lists it)")
        del self._user[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


ADAPTERS: MutableMapping[str, AdapterInfo] = _Registry()
_USER_TARGETS: dict[str, str] = {}  # target -> registered name


class _Builtin:
    """The names of the built-in adapters (a set view; adapters registered by users are not built in)."""

    def __contains__(self, name: object) -> bool:
        return name in ADAPTERS.builtin()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[str]:
        return iter(ADAPTERS.builtin())  # type: ignore[attr-defined]


BUILTIN = _Builtin()


def entry_points() -> dict[str, str]:
    """Installed user adapters: entry-point name -> ``"module:factory"``."""
    from importlib.metadata import entry_points as installed

    return {ep.name: ep.value for ep in installed(group=ENTRY_POINT_GROUP)}


def register_user_adapter(target: str, name: str | None = None) -> AdapterInfo:
    """Describe ``target`` (``"package.module:factory"``) in a subprocess and add it to `ADAPTERS`.

    ``name`` (an entry point's name) overrides the adapter's own ``name``. `InputKeyError` with
    one line when the target cannot be imported, is not an adapter, or clashes with a name."""
    if target in _USER_TARGETS and (name is None or _USER_TARGETS[target] == name):
        return ADAPTERS[_USER_TARGETS[target]]
    meta = describe(target, {**ONE_THREAD})
    name = name or meta["name"]
    if name in ADAPTERS and ADAPTERS[name].target != target:
        raise InputKeyError(f"adapter {target}: its name {name!r} is already taken by {ADAPTERS[name].target}")
    ADAPTERS[name] = info(target, {**meta, "name": name})
    _USER_TARGETS[target] = name
    return ADAPTERS[name]


def resolve(patterns: list[str], known: list[str] | None = None, targets: bool = True) -> list[str]:
    """Adapter names matching ``patterns``: a full name (``torch.single``), a family prefix
    (``torch`` -> ``torch.single``, ``torch.foreach``, ...), ``all`` (every built-in adapter), an installed
    entry point's name or (``targets``) a ``package.module:factory`` target (both registered on first use).
    `InputKeyError` names an unknown one. Suites pass ``targets=False``: a suite file never makes the harness
    import a module the user did not name on the command line."""
    out: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise InputKeyError(f"adapter {pattern!r}: an empty name names no adapter")
        names = list(ADAPTERS) if known is None else known
        if pattern == ALL:  # every built-in adapter: a suite that says "all" grows with the records
            hits = [a for a in names if a in BUILTIN]
        else:
            hits = [a for a in names if a == pattern or a.startswith(pattern + ".")]
        if not hits and ":" in pattern and not targets:
            raise InputKeyError(f"adapter {pattern!r} is a Python target: suites name adapters (built-in or "
                                "installed entry points); give a package.module:factory target on the command line "
                                "with --adapter")
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
