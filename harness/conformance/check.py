"""Judge one implementation from Python: an adapter object, its class or factory, or a step function.

The engine of the pytest plugin (`harness.pytest_plugin`) and of `assert_conforms`::

    from harness.conformance.check import assert_conforms
    assert_conforms(make_adapter)                                   # every case of the default suite
    assert_conforms(my_step, preset="torch", dtypes=["float32"])    # a step function, claiming torch's semantics

The implementation runs in this process (`harness.conformance.inprocess`) and is planned, judged and
diagnosed exactly as by ``rmsprop-harness run --adapter module:factory``; ``out`` writes the usual run
folder (tables, env.json, shards) for `harness.report.write_report`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.adapters import Adapter
from harness.adapters.step import StepFunction
from harness.base.schema import PASSING
from harness.conformance import inprocess
from reference.errors import InputValueError
from reference.trajectory import STATE_KINDS


class ConformanceError(AssertionError):
    """Some case of an implementation failed; the message is the diagnosis of each."""


def as_adapter(obj: Any, preset: str | None = None, name: str | None = None) -> Adapter:
    """An adapter from what a user has at hand: an `Adapter` instance, its class, a factory that takes no
    argument, or a step function ``fn(param, grad, state, **args)`` (`harness.adapters.step`; needs ``preset``)."""
    if isinstance(obj, Adapter) or (hasattr(obj, "run") and hasattr(obj, "available") and not inspect.isclass(obj)):
        adapter = obj
    elif inspect.isclass(obj) or (callable(obj) and _takes_no_argument(obj)):
        adapter = obj()
    elif callable(obj):
        if preset is None:
            raise InputValueError(f"{getattr(obj, '__name__', obj)!r} is a step function: give preset= (the semantics "
                                  "it claims and the argument names it takes: torch, keras, optax, ...)")
        adapter = StepFunction(obj, preset=preset, name=name)
    else:
        raise InputValueError(f"{obj!r} is neither an adapter, an adapter factory nor a step function")
    if name is not None:
        adapter.name = name
    if preset is not None and getattr(adapter, "preset", preset) != preset:
        raise InputValueError(f"adapter {adapter.name!r} claims preset {adapter.preset!r}, not {preset!r}")
    return adapter


def _takes_no_argument(fn: Callable) -> bool:
    try:
        return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                       for p in inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class CaseResult:
    """One task's verdict, with the summary row and the divergence rows it came from."""

    summary: dict[str, Any]
    divergence: list[dict[str, Any]] = field(default_factory=list)

    def __getattr__(self, column: str) -> Any:  # case, adapter, device, dtype, status, reason, ...
        try:
            return self.__dict__["summary"][column]
        except KeyError:
            raise AttributeError(column) from None

    @property
    def id(self) -> str:
        """``case-dtype`` (``-gpu`` when on a GPU): the pytest item id."""
        return test_id(self.summary["case"], self.summary["dtype"], self.summary["device"])

    @property
    def passed(self) -> bool:
        """ok; unsupported and skipped rows neither pass nor fail (pytest skips them)."""
        return self.summary["status"] == "ok"

    @property
    def failed(self) -> bool:
        return self.summary["status"] not in PASSING

    def diagnosis(self) -> str:
        """What failed first, by how much, and the knob when one explains it: several lines."""
        s = self.summary
        head = (f"{s['case']} / {s['adapter']} [{s['dtype']}@{s['device']}], judged against the {s['preset']} "
                f"reference: {s['status']}")
        lines = [head, *(f"  {part.strip()}" for part in str(s.get("reason") or "").split("; ") if part.strip())]
        figures = []
        if _finite(s.get("worst_budget_ratio")):
            figures.append(f"worst {s['worst_budget_ratio']:.3g} rounding budgets (tolerance {s['tolerance']:.3g})")
        if _finite(s.get("max_abs_err")):
            figures.append(f"max |x - x_ref| {s['max_abs_err']:.3g}")
        if _finite(s.get("max_ulp")):
            figures.append(f"{s['max_ulp']:.3g} ulp")
        states = [f"{k} {s[f'{k}_budget_ratio']:.3g}" for k in STATE_KINDS if _finite(s.get(f"{k}_budget_ratio"))]
        if states:
            figures.append(f"state budgets: {', '.join(states)}")
        if figures:
            lines.append(f"  figures (last recorded step): {'; '.join(figures)}")
        first = next((r for r in self.divergence if _finite(r.get("budget_ratio"))
                      and r["budget_ratio"] > (r.get("tolerance") or math.inf)), None)
        if first is not None:
            lines.append(f"  first step beyond tolerance: {int(first['step'])} ({first['budget_ratio']:.3g} budgets > "
                         f"{first['tolerance']:.3g})")
        if s.get("args"):
            lines.append(f"  arguments: {s['args']}")
        return "\n".join(lines)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def test_id(case: str, dtype: str, device: str) -> str:
    return f"{case}-{dtype}" + ("" if device == "cpu" else f"-{device}")


def conformance(obj: Any, *, preset: str | None = None, name: str | None = None, suite: str | Path = "default",
                cases: list[str] | None = None, dtypes: list[str] | None = None, devices: list[str] | None = None,
                out: str | Path | None = None) -> list[CaseResult]:
    """Every task of ``suite`` the implementation joins, run in this process and judged; one result each,
    in plan order. ``out`` also writes the run folder (its shards are always rerun: an object's code has no
    digest to resume by)."""
    from harness.conformance.runner import run_suite

    adapter = as_adapter(obj, preset, name)
    info = inprocess.register(adapter)
    try:
        result = run_suite(suite, adapters=[info.name], cases=cases, dtypes=dtypes, devices=devices, out=out,
                           jobs=1, parity_scenarios=False, training=False, rerun="all" if out is not None else None)
    finally:
        inprocess.unregister(info.name)
    return results_of(result.summary, result.divergence, info.name)


def results_of(summary: pd.DataFrame, divergence: pd.DataFrame, adapter: str) -> list[CaseResult]:
    rows = summary[summary["adapter"] == adapter].to_dict("records")
    div = divergence[divergence["adapter"] == adapter] if len(divergence) else divergence
    out = []
    for row in rows:
        mine = div[(div["case"] == row["case"]) & (div["dtype"] == row["dtype"]) & (div["device"] == row["device"])] \
            if len(div) else div
        out.append(CaseResult(row, mine.to_dict("records") if len(mine) else []))
    return out


def assert_conforms(obj: Any, **options: Any) -> list[CaseResult]:
    """`conformance`, raising `ConformanceError` with every failing task's diagnosis; the results otherwise.
    A run in which nothing passed (every task unsupported or skipped) fails too: it proved nothing."""
    results = conformance(obj, **options)
    failed = [r for r in results if r.failed]
    if failed:
        raise ConformanceError(f"{len(failed)} of {len(results)} tasks failed:\n"
                               + "\n".join(r.diagnosis() for r in failed))
    if not any(r.passed for r in results):
        reasons = sorted({f"{r.status}: {r.reason}" for r in results})
        raise ConformanceError(f"no task passed (all {len(results)} unsupported or skipped): {'; '.join(reasons)}")
    return results


__all__ = ["CaseResult", "ConformanceError", "as_adapter", "assert_conforms", "conformance", "results_of", "test_id"]
