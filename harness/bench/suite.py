"""Bench suites (TOML ``[[bench]]`` tables) and their plan: one job per entry and adapter."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.adapters import ADAPTERS, resolve
from harness.base.limits import MAX_TENSORS
from harness.bench.roofline import COPY_ADAPTERS, ITEMSIZE, model_shapes, split_shapes
from reference import presets
from reference.errors import InputError, InputValueError
from reference.translate import KNOBS, Unsupported, knob_args

BENCH_KEYS = ("name", "description", "adapters", "variants", "sizes", "tensors", "dtypes", "devices", "settings",
              "min_time", "repeats")
TOP_KEYS = ("name", "description", "rounds", "threads", "bench")
SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"


class BenchError(InputValueError):
    """A bench suite or option that cannot be used; one line."""


@dataclass(frozen=True, kw_only=True)
class BenchEntry:
    """One ``[[bench]]`` table: adapters x variants x sizes (or tensor splits) x dtypes x devices."""

    name: str
    adapters: tuple[str, ...]
    variants: tuple[str, ...] | None = None  # None: every variant the adapter offers
    sizes: tuple[int, ...] = (1000, 100_000, 10_000_000)
    tensors: tuple[int, ...] | None = None  # None: the model layout; else equal 1-D tensors per count
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[str, ...] | str = "auto"
    settings: dict[str, Any] = field(default_factory=dict)
    min_time: float = 0.2
    repeats: int = 7
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


@dataclass(frozen=True, kw_only=True)
class BenchSuite:
    name: str
    entries: tuple[BenchEntry, ...]
    description: str = ""
    path: Path | None = None
    rounds: int = 1  # the whole suite is measured this many times, each round in fresh workers
    threads: int | None = None  # intra-op threads per framework; None: each framework's default


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
        entry = BenchEntry(name=str(t.get("name", f"bench{i}")), adapters=adapters,
                           variants=None if variants is None else tuple(variants),
                           sizes=tuple(int(s) for s in sizes), tensors=None if tensors is None else tuple(tensors),
                           dtypes=tuple(dtypes), devices=devices if devices == "auto" else tuple(devices),
                           settings=dict(settings), min_time=float(min_time), repeats=repeats,
                           description=str(t.get("description", "")))
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
    return BenchSuite(name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
                      path=path, entries=tuple(entries), rounds=rounds, threads=threads)


@dataclass(kw_only=True)
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
            jobs.append(Job(adapter=adapter, target=info.target, family=info.family,
                            devices_allowed=list(info.devices), bench=entry.name, kwargs=entry.kwargs(adapter),
                            variants=None if entry.variants is None else list(entry.variants),
                            devices=devices or entry.devices, dtypes=dtypes or list(entry.dtypes), layouts=layouts,
                            min_time=min_time or entry.min_time, repeats=repeats or entry.repeats))
            for size in entry.sizes:
                sizes.setdefault(size, set()).update(dtypes or entry.dtypes)
    if not jobs:
        raise BenchError(f"no benchmark in suite {suite.name!r} matches --adapter {','.join(adapters or [])}")
    copy_layouts = [(f"copy {n}", {"x": [n]}) for n in sorted(sizes)]
    copy_dtypes = sorted({d for ds in sizes.values() for d in ds})
    for name, info in COPY_ADAPTERS.items():
        # a roofline kernel runs only where it can (numpy copies on the host): with --device gpu the
        # roofline is the GPU kernels', not a "skipped" row for the host's
        copy_devices = [d for d in devices if d == "auto" or d in info.devices] if devices else "auto"
        if not copy_devices:
            continue
        jobs.insert(0, Job(adapter=name, target=info.target, family=info.family, devices_allowed=list(info.devices),
                           bench="roofline", kwargs={}, variants=None, devices=copy_devices, dtypes=copy_dtypes,
                           layouts=copy_layouts, min_time=min_time or 0.2, repeats=repeats or 7))
    return jobs



__all__ = ["BenchEntry", "BenchError", "BenchSuite", "Job", "load_bench_suite", "plan"]
