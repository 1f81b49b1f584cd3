"""What a closed-loop comparison runs: each framework's arguments under each settings, and the runs
that split the divergence between the base framework and every other one.

Settings:

* ``defaults``: each optimizer as constructed with no arguments (those it requires: the record's);
* ``same``: the same numbers under each framework's own names, as people copy them when they port:
  the base framework's defaults with the workload's learning rate (``--set knob=value`` overrides);
* ``translated``: the base's ``same`` arguments through `harness.compare.translate`: each target's
  closest arguments, verified on the reference before they are used.

Runs of one workload and settings, for every framework F, and B != base:

==================  =====================================================================
native              F's model, F's own optimizer
floor               the same, from initial weights moved by one ulp (the size of a rounding
                    difference after these dynamics)
reference           F's model, the float64 reference of F's semantics (F's gradients, closed loop)
reference/B         base's model, the reference of B's semantics, closed loop
open/B              B's semantics fed base's `reference` gradients, open loop
knobs/B#mask        base's model, the base's semantics with the knobs in ``mask`` set to B's,
                    closed loop: every proper subset of the differing knobs (at most
                    `MAX_KNOBS` of them), for their Shapley shares of the gap
==================  =====================================================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from harness.compare.translate import TranslateError, translate
from harness.training import trainers as registry
from harness.training.workloads import Workload
from reference import implementations
from reference.errors import InputValueError
from reference.translate import KNOBS, Unsupported, knob_args

SETTINGS = ("defaults", "same", "translated")
FLOOR_SEED = 0  # the signs of a floor run's one-ulp moves (`harness.training.worker.perturbed`)
MAX_KNOBS = 6  # 2^6 - 2 = 62 extra closed-loop reference runs per pair at most


@dataclass(frozen=True, kw_only=True)
class Run:
    trainer: str  # whose model (and worker)
    kind: str  # native | floor | reference | open
    optimizer: str  # whose semantics: the trainer itself, or another framework's (reference/open runs)
    preset: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.trainer}|{self.kind}|{self.optimizer}"


@dataclass(kw_only=True)
class Plan:
    """One workload under one settings: each trainer's arguments (or why it has none) and its runs."""

    workload: Workload
    settings: str
    base: str
    args: dict[str, dict[str, Any]]  # trainer -> its native arguments
    skipped: dict[str, str]  # trainer -> why it does not train under these settings
    runs: dict[str, list[Run]]  # trainer -> its runs (one worker each)
    values: dict[str, Any] = field(default_factory=dict)  # the neutral knob values of `same`
    knobs: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # other -> the differing knob groups
    knob_values: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # other -> (base's, other's)
    knob_notes: dict[str, str] = field(default_factory=dict)  # other -> why its gap is not split by knob


def neutral(base: str, workload: Workload, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``same`` settings: the base framework's defaults as neutral knobs, the workload's lr."""
    spec = implementations.get(registry.get(base).preset).defaults()
    values = {"lr": workload.lr, "decay": spec.decay, "eps": spec.eps}
    for knob, value in (overrides or {}).items():
        if knob not in KNOBS:
            raise InputValueError(f"--set {knob}: not a neutral knob; known: {', '.join(KNOBS)}")
        values[knob] = value
    return values


def _same(preset: str, values: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for knob, value in values.items():
        args.update(knob_args(preset, knob, value))
    return args


def arguments(trainer: str, settings: str, base: str, values: dict[str, Any]) -> dict[str, Any]:
    """``trainer``'s native arguments under ``settings``; `Unsupported`/`TranslateError` when it has none."""
    preset = registry.get(trainer).preset
    if settings == "defaults":
        return dict(implementations.get(preset).required)
    if settings == "same":
        return _same(preset, values)
    base_preset = registry.get(base).preset
    source = _same(base_preset, values)
    if preset == base_preset:
        return source
    return dict(_translated(base_preset, tuple(sorted(source.items())), preset))


@functools.lru_cache(maxsize=256)
def _translated(source: str, source_args: tuple, target: str) -> tuple:
    """translate's arguments; when the target computes the source's semantics exactly (`native_args`
    checks every knob) those, without translate's verification sweep (seconds per call)."""
    from reference import presets
    from reference.translate import native_args

    try:
        return tuple(native_args(target, presets.get(source)(**dict(source_args))).items())
    except Unsupported:
        pass
    t = translate(source, dict(source_args), target)
    if t.status not in ("exact", "equivalent", "closest"):
        raise TranslateError(f"translate {source} -> {target}: {t.status}")
    return tuple(t.args.items())


def make_plan(workload: Workload, settings: str, names: list[str], base: str,
              overrides: dict[str, Any] | None = None) -> Plan:
    values = neutral(base, workload, overrides)
    args: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            args[name] = arguments(name, settings, base, values)
        except (Unsupported, TranslateError) as exc:
            skipped[name] = f"no {settings} arguments: {exc}"
    runs: dict[str, list[Run]] = {}
    for name, a in args.items():
        preset = registry.get(name).preset
        runs[name] = [Run(trainer=name, kind="native", optimizer=name, preset=preset, args=a),
                      Run(trainer=name, kind="floor", optimizer=name, preset=preset, args=a),
                      Run(trainer=name, kind="reference", optimizer=name, preset=preset, args=a)]
    p = Plan(workload=workload, settings=settings, base=base, args=args, skipped=skipped, runs=runs,
             values=values)
    if base in args:
        for name, a in args.items():
            if name != base:
                preset = registry.get(name).preset
                runs[base] += [Run(trainer=base, kind="reference", optimizer=name, preset=preset, args=a),
                               Run(trainer=base, kind="open", optimizer=name, preset=preset, args=a)]
                runs[base] += _knob_runs(p, name)
    return p


def _knob_runs(p: Plan, other: str) -> list[Run]:
    """The closed-loop runs that split the base's semantic gap to ``other`` by knob (Shapley)."""
    from harness.compare.attribution import players, toggle
    from reference import presets

    a = presets.get(registry.get(p.base).preset)(**p.args[p.base])
    b = presets.get(registry.get(other).preset)(**p.args[other])
    groups = players(a, b)
    ka, kb = a.effective_knobs(), b.effective_knobs()
    p.knobs[other] = groups
    p.knob_values[other] = [(", ".join(str(ka[k]) for k in g), ", ".join(str(kb[k]) for k in g)) for g in groups]
    if len(groups) > MAX_KNOBS:
        p.knob_notes[other] = f"{len(groups)} knobs differ (more than {MAX_KNOBS}): not split by knob"
        return []
    spec = implementations.get("spec")
    out = []
    for mask in range(1, 2 ** len(groups) - 1):
        knobs = [k for i, g in enumerate(groups) if mask >> i & 1 for k in g]
        try:
            args = spec.native(toggle(a, b, knobs))
        except (ValueError, Unsupported) as exc:
            p.knob_notes[other] = f"knobs {knobs} cannot be set alone ({exc}): not split by knob"
            return []
        out.append(Run(trainer=p.base, kind="knobs", optimizer=f"{other}#{mask}", preset="spec", args=args))
    return out


def job(plan: Plan, trainer: str, dtype: str, steps: int, prefix: str = "") -> dict[str, Any]:
    """One trainer's runs of ``plan`` for a worker (open runs ride on its own reference run); run ids
    start with ``prefix`` (unique across the jobs of one worker). Trainers that share an environment
    share a worker (`harness.training.runner`)."""
    own = plan.runs[trainer]
    body = []
    for r in own:
        if r.kind == "open":
            continue
        kind = {"floor": "native", "knobs": "reference"}.get(r.kind, r.kind)
        entry: dict[str, Any] = {"id": prefix + r.id, "kind": kind, "preset": r.preset, "args": r.args,
                                 "perturb": FLOOR_SEED if r.kind == "floor" else None}
        if r.kind == "reference" and r.optimizer == trainer:
            entry["replays"] = [{"id": prefix + o.id, "preset": o.preset, "args": o.args}
                                for o in own if o.kind == "open"]
        body.append(entry)
    t = registry.get(trainer)
    return {"trainer": {"name": t.name, "model": t.model, "target": t.target, "modules": list(t.modules)},
            "workload": plan.workload.name, "dtype": dtype, "steps": steps, "runs": body}


__all__ = ["FLOOR_SEED", "MAX_KNOBS", "SETTINGS", "Plan", "Run", "arguments", "job", "make_plan", "neutral"]
