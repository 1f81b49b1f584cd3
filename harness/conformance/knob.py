"""The knob that explains a failing row: the claimed spec with one knob changed that reproduces the run.

A cheap identification (`rmsprop-harness identify` is the thorough one): the failing run's own snapshots are
compared with the reference under single changes of the claimed spec, in the order people get them wrong
(eps placement and size, the start of the square average, its weights swapped, where the lr enters the
momentum buffer, momentum or weight decay ignored, coupled for decoupled weight decay, a float32 learning
rate, ...). The first variant whose every recorded step is within its rounding tolerance is named; none when
no single change explains the run (two bugs at once, or something no RMSprop knob expresses).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from harness.conformance.metrics import divergence, reference_points
from harness.conformance.plan import Planned
from reference.budget import run_tolerance
from reference.errors import InputError
from reference.spec import RMSpropSpec


def _variants(spec: RMSpropSpec, dtype: str) -> Iterator[tuple[str, RMSpropSpec]]:
    """(what changed, the changed spec), most common mistakes first."""

    def said(knob: str, value: object, claimed: object) -> str:
        return f"{knob}={value!r} (the arguments say {claimed!r})"

    placement = spec.effective_eps_placement
    other = "inside" if placement == "outside" else "outside"
    yield said("eps_placement", other, placement), spec.replace(eps_placement=other, legacy_eps_switch=False)
    for k in range(-10, -2):
        if spec.eps and not np.isclose(spec.eps, 10.0**k, rtol=1e-6):
            yield said("eps", 10.0**k, spec.eps), spec.replace(eps=10.0**k)
    if placement == "outside" and spec.eps:
        yield (f"eps squared inside the sqrt ({said('eps_placement', 'inside', placement)}, eps={spec.eps**2:g})",
               spec.replace(eps_placement="inside", eps=spec.eps**2, legacy_eps_switch=False))
    v0 = 1.0 if spec.initial_accumulator == 0 else 0.0
    yield said("initial_accumulator", v0, spec.initial_accumulator), spec.replace(initial_accumulator=v0)
    yield (f"the square average's weights swapped ({said('decay', 1 - spec.decay, spec.decay)})",
           spec.replace(decay=1 - spec.decay))
    if spec.momentum > 0:
        where = "in_buffer" if spec.lr_placement == "after_buffer" else "after_buffer"
        yield said("lr_placement", where, spec.lr_placement), spec.replace(lr_placement=where)
        yield f"momentum ignored ({said('momentum', 0.0, spec.momentum)})", spec.replace(momentum=0.0, nesterov=False)
        yield said("nesterov", not spec.nesterov, spec.nesterov), spec.replace(nesterov=not spec.nesterov)
    if spec.weight_decay > 0:
        mode = "decoupled" if spec.weight_decay_mode == "coupled" else "coupled"
        yield said("weight_decay_mode", mode, spec.weight_decay_mode), spec.replace(weight_decay_mode=mode)
        yield (f"weight decay ignored ({said('weight_decay', 0.0, spec.weight_decay)})",
               spec.replace(weight_decay=0.0, weight_decay_mode="none"))
    if dtype == "float64" and "lr" not in spec.hyperparam_rounding:
        yield "the learning rate rounded to float32", spec.replace(
            hyperparam_rounding=set(spec.hyperparam_rounding) | {"lr"})
    yield said("centered", not spec.centered, spec.centered), spec.replace(centered=not spec.centered)
    yield said("bias_correction", not spec.bias_correction, spec.bias_correction), spec.replace(
        bias_correction=not spec.bias_correction)
    yield said("maximize", not spec.maximize, spec.maximize), spec.replace(maximize=not spec.maximize)


def explaining_knob(planned: Planned, snapshots: list) -> str | None:
    """The single change of ``planned.spec`` under which the run's ``snapshots`` are within the rounding
    tolerance at every recorded step, as ``knob=value (the arguments say claimed)``; None when there is none."""
    p = planned
    if p.spec is None or p.task is None or not snapshots or p.spec.state_quantization != "none":
        return None
    for label, variant in _variants(p.spec, p.dtype):
        try:
            points = reference_points(variant, p.case.gradient_stream(), p.task.params0, p.case.steps, p.dtype,
                                      p.task.record_steps, p.task.lrs)
        except (InputError, ValueError):
            continue  # a change the spec refuses (eps squared to 0, ...)
        if all(_within(divergence(s, points[s.step], p.dtype), run_tolerance(variant, s.step, p.dtype))
               for s in snapshots):
            return label
    return None


def _within(row: dict, tolerance: float) -> bool:
    ratio = row.get("budget_ratio", np.nan)
    return not row.get("nonfinite_mismatch") and bool(np.isfinite(ratio)) and ratio <= tolerance


__all__ = ["explaining_knob"]
