"""What a conformance run runs: a suite of cases, each a learning-rate schedule, a gradient stream,
shapes and the arguments of every adapter (loaded from TOML by `harness.conformance.suite`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.adapters import ADAPTERS
from harness.base.streams import GradientStream, Shapes, StreamSpec, initial_params
from harness.compare.sweep import Scenario
from reference import RMSpropSpec, presets
from reference.translate import Unsupported, native_args

#: Schedule kinds and their options (None: required).
SCHEDULES = {
    "values": {"values": None},
    "exponential": {"initial": None, "rate": None},
    "piecewise": {"boundaries": None, "values": None},
    "warmup_cosine": {"peak": None, "warmup": None, "final": 0.0},
}


class ScheduleError(ValueError):
    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A per-step learning rate (it replaces the lr of a case's arguments)."""

    kind: str
    options: dict[str, Any]

    @classmethod
    def parse(cls, table: Any, steps: int, suggest: Callable[[str, tuple[str, ...]], str]) -> Schedule:
        """A suite's ``schedule`` table, checked; `ScheduleError` names the key and the problem."""
        kind = table.get("kind") if isinstance(table, dict) else None
        if kind not in SCHEDULES:
            raise ScheduleError("kind", f"expected one of {', '.join(SCHEDULES)}, got {kind!r}")
        options = {k: v for k, v in table.items() if k != "kind"}
        allowed = tuple(SCHEDULES[kind])
        for key in options:
            if key not in allowed:
                raise ScheduleError(key, f"unknown key{suggest(key, allowed)}")
        for key, default in SCHEDULES[kind].items():
            if key not in options and default is None:
                raise ScheduleError(key, f"missing (a {kind} schedule needs {', '.join(allowed)})")

        def numbers(key: str, low: float = 0.0) -> None:
            v = options[key]
            values = v if isinstance(v, list) else [v]
            if not values or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                                     and x >= low for x in values):
                raise ScheduleError(key, f"expected finite numbers >= {low:g}, got {v!r}")

        for key in options:
            numbers(key)
        if kind == "values" and not isinstance(options["values"], list):
            raise ScheduleError("values", f"expected a list of learning rates, got {options['values']!r}")
        if kind == "values" and len(options["values"]) < steps:
            raise ScheduleError("values", f"{len(options['values'])} values for {steps} steps")
        for key in ("initial", "rate", "peak", "final"):
            if key in options and isinstance(options[key], list):
                raise ScheduleError(key, f"expected a number, got {options[key]!r}")
        if kind == "piecewise":
            bounds = options["boundaries"]
            if not isinstance(bounds, list):
                raise ScheduleError("boundaries", f"expected a list of step numbers, got {bounds!r}")
            increasing = all(x < y for x, y in itertools.pairwise(bounds))
            if not all(isinstance(b, int) and b >= 1 for b in bounds) or not increasing:
                raise ScheduleError("boundaries", f"expected strictly increasing step numbers >= 1, "
                                f"got {options['boundaries']!r}")
            if not isinstance(options["values"], list) or len(options["values"]) != len(bounds) + 1:
                raise ScheduleError("values", "a piecewise schedule needs len(boundaries) + 1 values")
        if kind == "warmup_cosine" and not (isinstance(options["warmup"], int) and options["warmup"] >= 0):
            raise ScheduleError("warmup", f"expected a number of steps >= 0, got {options['warmup']!r}")
        return cls(kind=kind, options=options)

    def lrs(self, steps: int) -> np.ndarray:
        """The learning rate of steps 1..steps, float64."""
        t = np.arange(1, steps + 1, dtype=np.float64)
        o = self.options
        if self.kind == "values":
            return np.asarray(o["values"][:steps], np.float64)
        if self.kind == "exponential":
            return o["initial"] * o["rate"] ** (t - 1)
        if self.kind == "piecewise":
            return np.asarray(o["values"], np.float64)[np.searchsorted(o["boundaries"], t, side="left")]
        peak, warmup, final = o["peak"], o["warmup"], o.get("final", 0.0)
        warm = peak * t / max(warmup, 1)
        progress = np.clip((t - warmup) / max(steps - warmup, 1), 0.0, 1.0)
        cosine = final + 0.5 * (peak - final) * (1 + np.cos(np.pi * progress))
        return np.where(t <= warmup, warm, cosine)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One ``[[case]]`` after expansion: what every adapter runs and what the reference must match."""

    name: str
    adapters: tuple[str, ...]
    stream: StreamSpec
    shapes: Shapes
    steps: int
    dtypes: tuple[str, ...]
    devices: tuple[str, ...] | str
    seed: int
    init_scale: float
    records: int
    timeout: float
    description: str = ""
    args: dict[str, dict[str, Any]] | None = None  # framework-native arguments per adapter or family
    spec: RMSpropSpec | None = None  # or the semantics, translated for each adapter
    schedule: Schedule | None = None
    unsupported: dict[str, Unsupported] = field(default_factory=dict)  # adapter or family -> why (matrix knobs)

    def native(self, adapter: str) -> dict[str, Any]:
        """The adapter's constructor arguments; `Unsupported` when ``spec`` cannot be expressed."""
        info = ADAPTERS[adapter]
        lacking = self.unsupported.get(adapter, self.unsupported.get(info.family))
        if lacking is not None:
            raise lacking
        if self.spec is not None:
            return native_args(info.preset, self.spec)
        args = (self.args or {}).get(adapter, (self.args or {}).get(info.family))
        if args is None:
            args = dict(presets.REQUIRED_DEFAULTS.get(info.preset, {}))
        return dict(args)

    def reference_spec(self, adapter: str) -> RMSpropSpec:
        """The semantics the adapter's framework runs: its preset of the native arguments."""
        return presets.get(ADAPTERS[adapter].preset)(**self.native(adapter))

    def gradient_stream(self) -> GradientStream:
        return GradientStream(self.stream, self.shapes)

    def params0(self) -> dict[str, np.ndarray]:
        recorded = self.gradient_stream().recorded_params()
        if recorded is not None:
            return recorded
        return initial_params(self.shapes, self.seed, self.init_scale)

    def lrs(self) -> np.ndarray | None:
        return None if self.schedule is None else self.schedule.lrs(self.steps)


@dataclass(frozen=True, kw_only=True)
class Suite:
    name: str
    path: Path
    digest: str  # sha256 of the file
    cases: tuple[Case, ...]
    description: str = ""
    parity: tuple[Scenario, ...] = ()  # cross-framework parity scenarios (`harness.compare.parity`)
    train: tuple[Any, ...] = ()  # closed-loop training (`harness.training.runner.TrainSpec`)
    environments: tuple[Any, ...] = ()  # named package sets (`harness.base.envs.Environment`)


__all__ = ["SCHEDULES", "Case", "Schedule", "ScheduleError", "Suite"]
