"""What `reference.identify` found, and how it is named: the spec, its residual, the nearest implementation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .spec import RMSpropSpec

#: The discrete knobs an identification decides (and lists when they differ).
DISCRETE = ("eps_placement", "centered", "centered_order", "initial_accumulator", "lr_placement", "nesterov",
            "weight_decay_mode", "maximize", "hyperparam_rounding")


@dataclass
class Identification:
    """What `identify` found: the spec, its residual in float64 budgets against the tolerance, and the
    nearest implementation (its preset name, arguments, and the discrete knobs it would need changed)."""

    spec: RMSpropSpec
    budgets: float
    tolerance: float
    nearest: str
    differences: list[str]
    candidates: list[tuple[str, float]]  # (form, residual cost) of the forms fitted, best first
    also: list[str] = field(default_factory=list)  # other implementations that take these semantics too
    dtype: str = "float64"  # the arithmetic the residual's budgets are in
    undecided: list[str] = field(default_factory=list)  # what these data cannot decide, and why
    #: per fitted value, the relative change the data cannot tell from it (`identify._resolution`)
    resolution: dict[str, float] = field(default_factory=dict)

    @property
    def reproduces(self) -> bool:
        return self.budgets <= self.tolerance

    def versus(self, claimed: RMSpropSpec) -> list[str]:
        """The knobs where what was identified differs from what the arguments claim (the claimed preset's
        spec): ``eps=1e-07 (the arguments say 1e-08)``. Float32 roundings of a claimed value are not listed
        here (`roundings` says them)."""
        got, want = self.spec.effective_knobs(), claimed.effective_knobs()
        out = []
        for name in ("decay", "eps", "momentum", "weight_decay", *DISCRETE):
            key = "effective_eps_placement" if name == "eps_placement" else name
            a, b = got.get(key), want.get(key)
            if name == "hyperparam_rounding" or "-" in (a, b) or a == b or {a, b} <= _ROUNDING_ONLY.get(name, set()):
                continue
            if isinstance(a, float) and isinstance(b, float) and (
                    float(np.float32(b)) == a or abs(a - b) <= max(2 * self.resolution.get(name, 0.0), 1e-12) * abs(a)):
                continue  # a float32 rounding (`roundings` says it), closer than the data decide, or float64 noise
            out.append(f"{name}={a!r} (the arguments say {b!r})")
        return out

    def roundings(self) -> list[str]:
        """The fitted values that are a short decimal rounded to float32 (a float32 hyperparameter), and a
        float32 learning rate."""
        out = []
        for name, value in (("decay", self.spec.decay), ("eps", self.spec.eps), ("momentum", self.spec.momentum),
                            ("weight_decay", self.spec.weight_decay)):
            for digits in range(1, 7):
                short = float(f"{value:.{digits}g}")
                if value and short != value and float(np.float32(short)) == value:
                    out.append(f"{name} is {short:g} rounded to float32 ({value!r})")
                    break
        if "lr" in self.spec.hyperparam_rounding and self.dtype == "float64":
            out.append("the learning rate is rounded to float32")
        return out

    def text(self) -> str:
        from . import implementations

        record = implementations.get(self.nearest)
        try:
            call = record.write_call(record.native(self.spec))
        except (ValueError, TypeError):
            call = record.title
        head = call if not self.differences else f"{call} except {'; '.join(self.differences)}"
        if self.also:
            head += f"\n  the same semantics: {', '.join(self.also)}"
        coarse = [f"{n} to {r:.1g} relative" for n, r in self.resolution.items() if r > 1e-6]
        notes = [*self.undecided, *self.roundings()]
        notes += [f"the data decide {', '.join(coarse)} only"] if coarse else []
        for note in notes:
            head += f"\n  {note}"
        verdict = (f"reproduced to rounding level ({self.budgets:.3g} {self.dtype} budgets, tolerance "
                   f"{self.tolerance:.0f})" if self.reproduces else
                   f"NO RMSprop spec reproduces this: best fit {self.budgets:.3g} {self.dtype} budgets "
                   f"(tolerance {self.tolerance:.0f})")
        return f"{head}\n  {verdict}"



#: Forms that differ in rounding only (the same mathematics): what a probe cannot decide in float32 and
#: implementations' arguments do not distinguish.
_ROUNDING_ONLY = {"weight_decay_mode": {"decoupled", "multiplicative"},
                  "centered_order": {"sub_then_eps", "eps_then_sub"}}


def _same_mathematics(spec: RMSpropSpec) -> list[RMSpropSpec]:
    """``spec`` and the specs that differ from it in rounding only (`_ROUNDING_ONLY`)."""
    out = [spec]
    for name, pair in _ROUNDING_ONLY.items():
        value = getattr(spec, name)
        if value in pair and (name != "centered_order" or spec.centered):
            out += [s.replace(**{name: next(iter(pair - {value}))}) for s in out]
    return out


def form(spec: RMSpropSpec) -> str:
    k = spec.effective_knobs()
    return ", ".join(f"{n}={k[n]}" for n in DISCRETE if k.get(n) not in (None, "-"))


def takes(name: str, spec: RMSpropSpec) -> bool:
    """Whether implementation ``name``'s arguments can express ``spec``, or a spec that differs from it in
    rounding only (`_ROUNDING_ONLY`)."""
    from . import implementations
    from .translate import Unsupported, native_args

    candidates = _same_mathematics(spec)
    try:
        own = implementations.get(name).defaults()
    except (KeyError, ValueError, TypeError):
        own = None
    if own is not None and own.state_quantization != "none" and spec.state_quantization == "none":
        # an 8-bit state leaves a tensor below its minimum size in float32: the same semantics there
        candidates += [c.replace(state_quantization=own.state_quantization,
                                 state_quantization_min_size=own.state_quantization_min_size) for c in candidates]
    for candidate in candidates:
        try:
            native_args(name, candidate)
            return True
        except (Unsupported, ValueError, TypeError):
            pass
    return False


def nearest(spec: RMSpropSpec, prefer: str | None = None) -> tuple[str, list[str], list[str]]:
    """(the implementation whose preset can take this spec, no differences, the others that can too), else the
    one whose defaults differ from it in the fewest discrete knobs, with those differences."""
    from . import implementations

    takers = [r.name for r in implementations.all_records() if r.name != "spec" and takes(r.name, spec)]
    if prefer in takers:
        takers.remove(prefer)
        takers.insert(0, prefer)
    if takers:
        return takers[0], [], takers[1:]
    want = spec.effective_knobs()
    best: tuple[int, str, list[str]] | None = None
    for record in implementations.all_records():
        if record.name == "spec":
            continue
        have = record.defaults().effective_knobs()
        diffs = [f"{n}={want[n]!r} (it has {have[n]!r})" for n in DISCRETE
                 if n != "hyperparam_rounding" and want.get(n) != have.get(n) and "-" not in (want.get(n), have.get(n))]
        if best is None or len(diffs) < best[0]:
            best = (len(diffs), record.name, diffs)
    assert best is not None
    return best[1], best[2], []



__all__ = ["DISCRETE", "Identification", "form", "nearest", "takes"]
