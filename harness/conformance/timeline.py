"""The semantic timeline: one implementation's cases across its versions, and where its numerics changed.

`run_timeline` makes one named environment per version (`harness.base.envs`: the package at that
version over the harness's own environment), runs the suite's cases for the implementation's
adapters in each, and compares consecutive versions case by case (`changes`):

* ``none``: both ran and every recorded figure (error, relative error, ULPs, at every recorded
  step, against the same float64 reference) is bitwise the same: the numerics did not change;
* ``numerics``: both ran and some figure differs; the row gives the final error before and after
  (in rounding-budget units), and ``knob`` what `identify` finds changed between the two versions
  (the knob whose identified value differs), or ``rounding`` when it finds the same semantics;
* ``appeared`` / ``disappeared``: one version cannot express the case (an argument it does not have:
  ``knob`` names it) and the other can;
* ``status``: another verdict (ok to fail, say) with unchanged capability.

A version whose environment cannot be created stops the timeline with one line (exit 2).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.adapters import ADAPTERS
from harness.base import envs, schema
from harness.conformance.plan import RunError
from reference import implementations

CHANGES = ("none", "numerics", "appeared", "disappeared", "status", "missing")
_FIGURES = ("max_abs_err", "max_rel_err", "max_ulp", "median_ulp")


@dataclass(frozen=True)
class Subject:
    """What a timeline follows: a distribution and the adapters that drive it."""

    package: str
    adapters: tuple[str, ...]
    records: tuple[str, ...]


def subject(name: str) -> Subject:
    """``--implementation``: a preset name (``optax``, ``keras_jax``) or a distribution (``keras``: every
    backend's record)."""
    records = [r for r in implementations.all_records() if r.packages and (r.name == name or r.packages[0] == name)]
    targets = {t for r in records for t in r.adapters}
    adapters = tuple(a for a, info in ADAPTERS.items() if info.target in targets)
    if not records or not adapters:
        known = sorted({r.name for r in implementations.all_records() if r.adapters}
                       | {r.packages[0] for r in implementations.all_records() if r.adapters and r.packages})
        raise RunError(f"--implementation {name!r}: no implementation with an adapter by that name or package; "
                       f"known: {', '.join(known)}")
    return Subject(records[0].packages[0], adapters, tuple(r.name for r in records))


def environments(sub: Subject, versions: list[str], extra: list[str] | None = None) -> list[envs.Environment]:
    """One environment per version, in the order given (oldest first, as the timeline reads)."""
    if len(versions) < 2:
        raise RunError("--versions: give at least two versions to compare (e.g. 0.1.7,0.2.4)")
    if len(set(versions)) != len(versions):
        raise RunError("--versions: a version is named twice")
    out = []
    for v in versions:
        if not re.fullmatch(r"[A-Za-z0-9_.+!-]+", v):
            raise RunError(f"--versions: {v!r} is not a version")
        out.append(envs.Environment(name=f"{sub.package}-{v}", packages=(f"{sub.package}=={v}", *(extra or [])),
                                    adapters=sub.adapters))
    return out


def _figures(divergence: pd.DataFrame, key: tuple, label: str) -> list[tuple] | None:
    case, device, dtype = key
    rows = divergence[(divergence["case"] == case) & (divergence["adapter"] == label)
                      & (divergence["device"] == device) & (divergence["dtype"] == dtype)].sort_values("step")
    if rows.empty:
        return None
    return [tuple(_exact(v) for v in r) for r in rows[["step", *_FIGURES]].itertuples(index=False)]


def _exact(value: Any) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _argument(reason: str) -> str:
    match = re.search(r"no argument '(\w+)'", str(reason))
    return match[1] if match else ""


def changes(summary: pd.DataFrame, divergence: pd.DataFrame, plan: dict[str, Any]) -> pd.DataFrame:
    """The timeline table (see the module docstring) from a timeline run's tables; ``plan`` is its
    env.json ``timeline`` entry. A numerics change's ``knob`` is left for `identify_changes`."""
    names, versions = plan["environments"], plan["versions"]
    rows = []
    summary = summary.assign(_base=summary["adapter"].str.split("@").str[0])
    for (case, adapter, device, dtype), group in summary.groupby(["case", "_base", "device", "dtype"], sort=False):
        by_env = {str(r.adapter).split("@", 1)[1]: r for r in group.itertuples() if "@" in str(r.adapter)}
        for (a, va), (b, vb) in zip(zip(names, versions, strict=True), list(zip(names, versions, strict=True))[1:],
                                    strict=False):
            ra, rb = by_env.get(a), by_env.get(b)
            row = {"implementation": plan["implementation"], "case": case, "adapter": adapter, "device": device,
                   "dtype": dtype, "from_version": va, "to_version": vb,
                   "status_from": getattr(ra, "status", "missing"), "status_to": getattr(rb, "status", "missing"),
                   "budget_from": getattr(ra, "worst_budget_ratio", math.nan),
                   "budget_to": getattr(rb, "worst_budget_ratio", math.nan),
                   "err_from": getattr(ra, "max_abs_err", math.nan), "err_to": getattr(rb, "max_abs_err", math.nan),
                   "knob": "", "detail": ""}
            ran = ("ok", "fail", "degenerate")
            if ra is None or rb is None:
                row["change"] = "missing"
            elif row["status_from"] == "unsupported" and row["status_to"] in ran:
                row["change"], row["knob"] = "appeared", _argument(ra.reason)
                row["detail"] = str(ra.reason)
            elif row["status_from"] in ran and row["status_to"] == "unsupported":
                row["change"], row["knob"] = "disappeared", _argument(rb.reason)
                row["detail"] = str(rb.reason)
            elif row["status_from"] in ran and row["status_to"] in ran:
                same = _figures(divergence, (case, device, dtype), ra.adapter) == \
                    _figures(divergence, (case, device, dtype), rb.adapter)
                row["change"] = "none" if same and row["status_from"] == row["status_to"] else \
                    "numerics" if not same else "status"
            else:
                row["change"] = "none" if row["status_from"] == row["status_to"] else "status"
            rows.append(row)
    return pd.DataFrame(rows, columns=schema.TIMELINE)


def identify_changes(table: pd.DataFrame, summary: pd.DataFrame, environments_: list[envs.Environment]
                     ) -> dict[tuple, str]:
    """For each numerics change, what `identify` finds different between the two versions, by (case, adapter,
    from version, to version): the knobs whose identified values differ (``rounding`` when the semantics are
    the same). `with_knobs` puts them in the table."""
    from harness.conformance.identify import identify_configurations

    by_version = {e.packages[0].split("==", 1)[1]: e for e in environments_}
    out: dict[tuple, str] = {}
    for r in table[table["change"] == "numerics"].drop_duplicates(["case", "adapter", "from_version",
                                                                     "to_version"]).itertuples():
        rows = summary[(summary["case"] == r.case) & (summary["adapter"].str.startswith(f"{r.adapter}@"))]
        kwargs = json.loads(rows["args"].iloc[0]) if len(rows) else {}
        found = []
        for version in (r.from_version, r.to_version):
            python = str(envs.ensure(by_version[version]))
            [ident] = identify_configurations(r.adapter, [kwargs], python=python)
            found.append(ident)
        if any(isinstance(f, Exception) for f in found):
            out[(r.case, r.adapter, r.from_version, r.to_version)] = "identify failed: " + "; ".join(
                str(f) for f in found if isinstance(f, Exception))[:200]
            continue
        a, b = (f.spec.knobs() for f in found)
        differ = [k for k in a if str(a[k]) != str(b.get(k))]
        out[(r.case, r.adapter, r.from_version, r.to_version)] = ", ".join(
            f"{k}: {a[k]} -> {b.get(k)}" for k in differ) or "rounding"
    return out


def with_knobs(table: pd.DataFrame, knobs: dict[tuple, str]) -> pd.DataFrame:
    """``table`` with each numerics change's ``knob`` from `identify_changes`."""
    keys = zip(table["case"], table["adapter"], table["from_version"], table["to_version"], strict=True)
    found = [knobs.get(key, knob) if change == "numerics" else knob
             for key, change, knob in zip(keys, table["change"], table["knob"], strict=True)]
    return table.assign(knob=found)


def run_timeline(implementation: str, versions: list[str], *, suite: str | Path = "timeline",
                 extra: list[str] | None = None, out: str | Path | None = "reports/timeline", jobs: int | None = None,
                 dtypes: list[str] | None = None, progress=None, identify: bool = True):
    """Run the timeline (see the module docstring); the run's result with its ``timeline`` table."""
    from harness.conformance.runner import run_suite

    sub = subject(implementation)
    named = environments(sub, versions, extra)
    plan = {"implementation": implementation, "package": sub.package, "versions": list(versions),
            "environments": [e.name for e in named], "adapters": list(sub.adapters)}

    def derive(tables: dict[str, pd.DataFrame], env: dict[str, Any]) -> dict[str, pd.DataFrame]:
        env["timeline"] = plan
        table = changes(tables["summary"], tables["divergence"], plan)
        return {"timeline": with_knobs(table, identify_changes(table, tables["summary"], named)) if identify
                else table}

    return run_suite(suite, adapters=list(sub.adapters), devices=["cpu"], dtypes=dtypes, out=out, jobs=jobs,
                     progress=progress, training=False, parity_scenarios=False, environments=named,
                     own_environment=False, derive=derive)


__all__ = ["CHANGES", "Subject", "changes", "environments", "identify_changes", "run_timeline", "subject",
           "with_knobs"]
