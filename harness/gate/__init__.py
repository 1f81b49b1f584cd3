"""`rmsprop-harness gate`: a run against a baseline, with a verdict a CI job can act on.

Four checks; a *regression* in any of them fails the gate (exit 1):

* **conformance**: a case that passed in the baseline now fails, errors, is degenerate,
  skipped or unsupported, or is missing (missing data fails closed); a case not in the
  baseline that fails, errors or is degenerate; a status this harness does not write counts
  as an error.
* **divergence** at every recorded step of every case that passes in both, in one of two
  modes (`harness.gate.numerics`): **exact** on the same machine fingerprint and versions
  (each figure may grow to 2x its baseline: the runs are bitwise reproducible there) and
  **portable** elsewhere (each budget figure as its share of the tolerance: a row may not move
  from comfortably inside into the upper half of its budget). The gate says which mode it
  used and why.
* **parity**: a cross-framework pair's verdict changed, or its divergence grew (same rules),
  or the pair went missing.
* **throughput** (bench folders, `harness.gate.throughput`): slower by more than
  ``min_effect`` and significant over the samples (Mann-Whitney U) and, with several rounds,
  over the round medians (Welch); same machine type and versions only unless
  ``throughput="always"``.

An interrupted current run fails as INCOMPLETE. A filtered one (``--case``, ``--dtype``, ...)
fails closed with one line, unless ``subset=True`` (``--subset``) asks to compare only the
rows it has. Everything else that changed (improvements, known failures, new cases, smaller
drifts) is a notice; `changes` lists every figure that differs at all (the diff that
``--update-baseline`` shows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from harness.gate import numerics as gate_numerics
from harness.gate.baseline import BaselineError, Tables
from harness.gate.findings import CHANGE_COLUMNS, FINDING_COLUMNS, Findings, Thresholds, records
from harness.gate.output import markdown, write
from harness.gate.throughput import comparable
from harness.gate.throughput import throughput as throughput_check

CHECKS = ("completeness", "conformance", "divergence", "parity", "throughput")
THROUGHPUT_MODES = ("auto", "always", "off")


@dataclass
class GateResult:
    findings: pd.DataFrame
    changes: pd.DataFrame  # every figure that differs at all, gated or not
    compared: dict[str, str]  # check -> what was compared, or why not
    thresholds: Thresholds
    baseline: dict[str, Any]
    current: dict[str, Any]
    throughput_note: str = ""
    updated: str | None = None  # the baseline folder, when --update-baseline replaced it
    notes: list[str] = field(default_factory=list)
    mode: str = "exact"  # how divergence was judged: exact | portable
    mode_reason: str = ""
    incomplete: str = ""  # the current run was interrupted: how far it got

    @property
    def regressions(self) -> pd.DataFrame:
        return self.findings[self.findings["severity"] == "regression"]

    @property
    def complete(self) -> bool:
        return not self.incomplete

    @property
    def passed(self) -> bool:
        return self.regressions.empty and self.complete

    @property
    def verdict(self) -> str:
        return "INCOMPLETE" if not self.complete else "PASS" if self.passed else "FAIL"

    @property
    def exit_code(self) -> int:
        return 0 if self.passed or self.updated else 1

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.lower(), "exit_code": self.exit_code, "regressions": len(self.regressions),
                "mode": self.mode, "mode_reason": self.mode_reason, "incomplete": self.incomplete or None,
                "compared": self.compared, "thresholds": asdict(self.thresholds),
                "throughput_note": self.throughput_note, "notes": self.notes, "baseline": self.baseline,
                "current": self.current, "updated": self.updated,
                "findings": records(self.findings), "changes": records(self.changes)}


def _filters(filters: dict[str, Any]) -> str:
    return ", ".join(f"--{k.rstrip('s')} {','.join(map(str, v))}" for k, v in filters.items()) or "none"


def _filtered(baseline: Tables, current: Tables) -> str:
    """The current run's filters when they differ from the baseline's (it covers less, or other rows)."""
    now, then = current.filters(), baseline.filters()
    if not now or now == then:
        return ""
    return _filters(now) + (f"; the baseline's: {_filters(then)}" if then else "")


def gate(baseline: Tables, current: Tables, thresholds: Thresholds | None = None,
         throughput: str = "auto", subset: bool = False) -> GateResult:
    """Compare ``current`` with ``baseline`` (see the module docstring)."""
    if throughput not in THROUGHPUT_MODES:
        raise BaselineError(f"throughput mode {throughput!r}: choose from {', '.join(THROUGHPUT_MODES)}")
    th = thresholds or Thresholds()
    out = Findings()
    compared: dict[str, str] = {}
    notes: list[str] = []
    if not baseline.conformance and not baseline.bench:
        raise BaselineError(f"{baseline.path}: the baseline holds no results")
    incomplete = "; ".join(current.incomplete)
    if incomplete:
        out.add("completeness", "regression", current.path, f"the current run is incomplete ({incomplete}): an "
                "interrupted run is never a pass", "tasks")
        compared["completeness"] = f"INCOMPLETE: {incomplete}"
    mode = gate_numerics.choose_mode(baseline, current)
    if baseline.conformance:
        if not current.conformance:
            suites = ", ".join(baseline.suites("conformance"))
            raise BaselineError(f"the baseline has conformance results (suite {suites}) but {current.path} has no "
                                "summary.parquet")
        if baseline.suites("conformance") != current.suites("conformance"):
            raise BaselineError(f"the baseline is for suite {', '.join(baseline.suites('conformance'))}, the current "
                                f"run is suite {', '.join(current.suites('conformance'))}")
        filtered = _filtered(baseline, current)
        if filtered and not subset:
            absent = len(baseline.summary) - int(baseline.summary.set_index(["case", "adapter", "device", "dtype"])
                                                 .index.isin(current.summary.set_index(["case", "adapter", "device",
                                                                                        "dtype"]).index).sum())
            out.add("conformance", "regression", current.path,
                    f"the current run is filtered ({filtered}): {absent} of {len(baseline.summary)} baseline rows are "
                    "absent; pass --subset to compare only the rows it has (a filtered run fails closed)", "filter")
            compared["conformance"] = f"not compared: a filtered run ({filtered}) without --subset"
        else:
            if filtered:
                notes.append(f"The current run is filtered ({filtered}); --subset compares only the rows it has.")
            compared["conformance"], both_ok = gate_numerics.conformance(baseline, current, out, subset)
            compared["divergence"] = gate_numerics.divergence(baseline, current, both_ok, th, out, mode)
            compared["parity"] = gate_numerics.parity(baseline, current, th, out, mode, subset)
    elif current.conformance:
        notes.append("the current conformance results are not gated: the baseline has none")
    if (baseline.bench and throughput != "off" and current.bench
            and baseline.suites("throughput") != current.suites("throughput")):
        raise BaselineError(f"the baseline's bench suite is {', '.join(baseline.suites('throughput'))}, the "
                            f"current one {', '.join(current.suites('throughput'))}")
    if baseline.bench or throughput == "off":
        compared["throughput"], note = throughput_check(baseline, current, th, throughput, out)
    else:
        compared["throughput"], note = "not compared: the baseline has no throughput table", ""
    findings = pd.DataFrame(out.rows, columns=FINDING_COLUMNS)
    order = {"regression": 0, "improvement": 1, "notice": 2}
    findings = findings.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    changes = pd.DataFrame(out.changes, columns=CHANGE_COLUMNS)
    return GateResult(findings, changes, compared, th, baseline.describe(), current.describe(), note, notes=notes,
                      mode=mode.name if baseline.conformance else "exact", mode_reason=mode.reason,
                      incomplete=incomplete)


__all__ = ["FINDING_COLUMNS", "GateResult", "Thresholds", "comparable", "gate", "markdown", "write"]
