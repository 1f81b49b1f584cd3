"""`rmsprop-harness translate`: one framework's RMSprop settings in another's arguments, verified.

``translate("torch", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, "optax")`` builds the
source's semantics (its preset), asks `reference.translate.native_args` for the
target's arguments that compute them, and then *measures*: both float64 references
run on a standard gradient stream (`harness.compare.parity`) and the result is

* ``exact``: the target computes the same mathematics (divergence at float64
  rounding level, or bitwise identical);
* ``equivalent``: the target lacks a knob the source has, but on this
  configuration it makes no measurable difference (lr placement with a constant
  lr and momentum: ``lr*b`` vs a buffer of ``lr*u``), so the translation is
  exact here and no longer under a schedule;
* ``closest``: impossible. The knobs the target cannot express are set to the
  target's own (eps placement: eps is re-chosen among candidates that match
  ``sqrt(v) + eps`` at ``v = 0`` and at ``v ~ 1``, the best measured wins), and the
  remaining divergence is attributed knob by knob (float32 hyperparameters,
  eps placement, initial accumulator, ...).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from harness.compare.attribution import attribute, label
from harness.compare.parity import Scenario, Sweep
from reference import RMSpropSpec, implementations, presets
from reference.errors import InputError, InputValueError
from reference.translate import Unsupported, native_args

STATUSES = ("exact", "equivalent", "closest", "degenerate")
_MAX_RELAX = 12


class TranslateError(InputValueError):
    """Bad source arguments or an unknown preset; one line."""


@dataclass
class Translation:
    source: str
    source_args: dict[str, Any]
    target: str
    status: str  # exact | equivalent | closest
    args: dict[str, Any]  # the target's arguments (those that differ from its defaults)
    call: str
    divergence: dict[str, Any]  # `harness.compare.parity.compare` of source and target at the worst scale
    scale: float = 1.0  # the gradient scale (gain on the stream) where they differ most
    lacking: list[dict[str, Any]] = field(default_factory=list)  # knob, wanted, got: what the target cannot do
    attribution: list[dict[str, Any]] = field(default_factory=list)
    eps_candidates: list[tuple[float, float]] = field(default_factory=list)  # (eps, measured divergence)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("exact", "equivalent")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "source_args", "target", "status", "args", "call",
                                              "divergence", "scale", "lacking", "attribution", "eps_candidates",
                                              "notes")}


def _relax(spec: RMSpropSpec, exc: Unsupported) -> RMSpropSpec:
    """``spec`` with the knob the target lacks set to the target's own value."""
    knob, got = exc.knob, exc.got
    if knob == "eps_placement":
        return spec.replace(eps_placement=got, legacy_eps_switch=False)
    if knob == "weight_decay_mode" and got == "none":
        return spec.replace(weight_decay=0.0, weight_decay_mode="none")
    if knob == "weight_decay" and got == 0.0:
        return spec.replace(weight_decay=0.0, weight_decay_mode="none")
    if knob == "state_quantization":  # the target quantizes as it does by default (its own minimum size)
        default = presets.defaults(exc.preset)
        return spec.replace(state_quantization=got,
                            state_quantization_min_size=default.state_quantization_min_size)
    if knob in ("clipvalue", "clipnorm", "global_clipnorm", "loss_scale", "accumulation_steps", "ema_momentum") \
            or got == "-":
        raise exc  # dropping a clip or an EMA is not a "closest" setting anyone wants silently
    return spec.replace(**{knob: got})


def _shown_args(target: str, args: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the target's defaults (and what it requires)."""
    params = inspect.signature(presets.get(target)).parameters
    required = presets.REQUIRED_DEFAULTS.get(target, {})
    out = {}
    for name, value in args.items():
        p = params.get(name)
        if name in required or p is None or p.default is inspect.Parameter.empty or p.default != value:
            out[name] = value
    return out


def call_text(target: str, args: dict[str, Any]) -> str:
    """How the target's call is written in a script (its implementation record says)."""
    return implementations.get(target).write_call(args)


def _eps_candidates(eps: float, to: str) -> list[float]:
    """eps values on the other side of the sqrt that match ``sqrt(v) + eps`` (or ``sqrt(v + eps)``)
    at v = 0 and, for v ~ 1 (the standard stream), to first order."""
    # inside: sqrt(v + e') = sqrt(v) + eps gives e' = eps^2 at v = 0 and ~2*eps*sqrt(v) for v >> eps^2;
    # outside: sqrt(v) + e' = sqrt(v + eps) gives e' = sqrt(eps) at v = 0 and ~eps/(2 sqrt(v)) for v >> eps
    values = [eps, eps * eps, 2 * eps] if to == "inside" else [eps, math.sqrt(eps), eps / 2]
    return list(dict.fromkeys(float(f"{v:.12g}") for v in values if v >= 0))  # 1e-16, not 1.0000000000000001e-16


def translate(source: str, source_args: dict[str, Any], target: str, scenario: Scenario | None = None
              ) -> Translation:
    """The verified translation of ``source(**source_args)`` into ``target``'s arguments."""
    for name in (source, target):
        if name not in implementations.names():
            raise TranslateError(f"unknown framework {name!r}; known: {', '.join(implementations.names())}")
    try:
        spec = presets.get(source)(**source_args)
    except InputError as exc:
        raise TranslateError(str(exc)) from None
    if spec.lr_schedule is not None:
        raise TranslateError("translate takes a constant learning rate")
    scenario = scenario or Scenario("translate", presets=(source, target))
    sweep = Sweep(scenario)
    want, lacking = spec, []
    for _ in range(_MAX_RELAX):
        try:
            args = native_args(target, want)
            break
        except Unsupported as exc:
            if exc.knob == "arguments":
                raise TranslateError(f"{target} rejects these settings: {exc.got}") from None
            try:
                want = _relax(want, exc)
            except Unsupported:
                raise TranslateError(f"{source} -> {target}: impossible, {target} has no "
                                     f"{exc.knob}={exc.wanted!r} and no closest setting") from None
            lacking.append({"knob": exc.knob, "wanted": exc.wanted, "got": exc.got})
    else:  # pragma: no cover - every knob is relaxed at most once
        raise TranslateError(f"{source} -> {target}: no translation after {_MAX_RELAX} relaxations")

    candidates: list[tuple[float, float]] = []
    moved = next((item for item in lacking if item["knob"] == "eps_placement"), None)
    if moved is not None:  # the eps that matches best over every scale of the sweep wins
        best = None
        for eps in _eps_candidates(spec.eps, moved["got"]):
            try:
                cand_args = native_args(target, want.replace(eps=eps))
            except Unsupported:
                continue
            cand = presets.get(target)(**cand_args)
            _, worst = sweep.worst(sweep.compare(spec, cand))
            candidates.append((eps, worst["divergence"]))
            if best is None or worst["divergence"] < best[0]:
                best = (worst["divergence"], cand_args)
        args = best[1]
    target_spec = presets.get(target)(**args)
    scale, metrics = sweep.worst(sweep.compare(spec, target_spec))
    at_rounding = metrics["verdict"] in ("identical", "rounding")
    if metrics["verdict"] == "degenerate":
        status = "degenerate"
    else:
        status = ("exact" if not lacking else "equivalent") if at_rounding else "closest"
    quantized = target_spec.state_quantization != spec.state_quantization
    if quantized and status in ("exact", "equivalent"):
        status = "closest"  # float64 references do not model a quantized state: never claimed equal
    rows = [] if at_rounding or status == "degenerate" else attribute(
        scenario, sweep.runners[scale], source, spec, target, target_spec, metrics,
        groups=(("effective_eps_placement", "eps"),) if candidates else (),
        sources=dict.fromkeys(spec.effective_knobs(), "semantics"))[0]
    notes = list(target_spec.notes)
    if status == "degenerate":
        notes.append("nothing was verified: on this stream the parameters never move to a finite new value "
                     "(give a stream whose updates move them)")
    if status == "equivalent":
        knobs = ", ".join(label(i["knob"]) for i in lacking)
        notes.append(f"{target} cannot express the source's {knobs}; on this configuration it makes no "
                     "measurable difference" + (" (a constant lr: under a schedule lr placement matters)"
                                                if any(i["knob"] == "lr_placement" for i in lacking) else ""))
    if quantized:
        notes.append(f"the state is {target_spec.state_quantization} here and "
                     f"{spec.state_quantization} there: the references compare the rest; a run judges the "
                     "quantized state with its derived allowance (reference/quantization.py)")
    if candidates:
        direction = "into" if moved["got"] == "inside" else "out of"
        chosen = args.get("eps", args.get("epsilon"))
        notes.append(f"eps moves {direction} the sqrt: eps={chosen!r} measured closest among "
                     f"{[c[0] for c in candidates]} at the worst of the gradient scales swept; which candidate is "
                     "best depends on the gradients' scale")
    shown = _shown_args(target, args)
    return Translation(source, dict(source_args), target, status, shown, call_text(target, shown), metrics,
                       scale, lacking, rows, candidates, notes)


def _scales(scenario: Scenario) -> str:
    scales = scenario.scale_list()
    if len(scales) == 1:
        return "" if scales[0] == 1.0 else f" x{scales[0]:g}"
    return f" at scales {scales[0]:g} ... {scales[-1]:g} ({len(scales)})"


def render(t: Translation, scenario: Scenario | None = None) -> str:
    """The human-readable block the CLI prints for one translation."""
    scenario = scenario or Scenario("translate", presets=(t.source, t.target))
    src = ", ".join(f"{k}={v!r}" for k, v in t.source_args.items())
    d = t.divergence
    lines = []
    if t.status == "exact":
        head = "exact"
    elif t.status == "equivalent":
        head = "equivalent on this configuration"
    elif t.status == "degenerate":
        head = "not verified (degenerate: nothing moves on this stream)"
    else:
        lacks = "; ".join(f"{t.target} has no {i['knob']}={i['wanted']!r} (it has {i['got']!r})" for i in t.lacking)
        differs = ", ".join(r["label"] for r in t.attribution if r["knob"] != "*")
        head = f"impossible: {lacks}" if lacks else f"not exact ({differs})"
    lines.append(f"{t.source}({src}) -> {t.target}: {head}")
    lines.append(f"  {'closest: ' if t.status == 'closest' else ''}{t.call}")
    where = (f"{scenario.steps} steps of {scenario.stream.label()} gradients{_scales(scenario)}, float64 references "
             f"(seed {scenario.seed})")
    worst = f" (worst at scale {t.scale:g})" if len(scenario.scale_list()) > 1 else ""
    lines.append(f"  verified on {where}: divergence {d['divergence']:.3g}{worst} (max |dp| {d['max_abs_diff']:.3g}, "
                 f"{d['budgets64']:.3g} float64 budgets, tolerance {d['tolerance64']:.3g}): {d['verdict']}")
    if d["verdict"] == "below float32":
        lines.append(f"  within float32 rounding ({d['budgets32']:.3g} float32 budgets, tolerance "
                     f"{d['tolerance32']:.3g}): a float32 run cannot tell them apart")
    for row in t.attribution:
        if row["knob"] == "*":
            lines.append(f"  all of these matched: divergence {row['without']:.3g} ({row['without_verdict']}; "
                         f"{_share(row['share'])} of the divergence unexplained)")
            continue
        lines.append(f"  {row['label']}: {row['value_a']} -> {row['value_b']}: share {_share(row['share'])} "
                     f"(Shapley), alone {row['alone']:.3g}, matched first removes {_share(row['first'] / row['with'])}")
    lines += [f"  note: {n}" for n in t.notes]
    return "\n".join(lines)


def _share(share: float) -> str:
    return "n/a" if share != share else f"{share:.1%}"
