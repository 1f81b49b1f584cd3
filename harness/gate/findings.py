"""The gate's findings and the helpers every check shares (keys, items, number formatting)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.gate.baseline import BaselineError
from reference.errors import InputValueError

FINDING_COLUMNS = ["check", "severity", "item", "figure", "step", "baseline", "current", "change", "message"]
CHANGE_COLUMNS = ["check", "item", "figure", "step", "baseline", "current", "change"]


@dataclass(frozen=True)
class Thresholds:
    """What counts as a regression (see the module docstring for the reasoning)."""

    factor: float = 2.0  # divergence and parity: growth beyond this factor of the baseline
    ulp_floor: float = 1.0  # ULP figures under this count as this
    budget_floor: float = 1.0  # budget-ratio figures under this count as this
    min_effect: float = 0.10  # throughput: median slower by more than this fraction ...
    alpha: float = 0.01  # ... and one-sided Mann-Whitney U p-value under this
    near: float = 0.5  # portable mode: a share of tolerance above this is near the limit ...
    share_factor: float = 2.0  # ... and alarms when it is also more than this times the baseline's share

    def __post_init__(self) -> None:
        if not 1 < self.factor < math.inf:
            raise InputValueError(f"divergence factor {self.factor} must be a finite number > 1")
        if not 0 < self.min_effect < 10:
            raise InputValueError(f"minimum effect {self.min_effect} must be in (0, 10)")
        if not 0 < self.alpha < 1:
            raise InputValueError(f"alpha {self.alpha} must be in (0, 1)")
        if not 0 < self.near <= 1 or not 1 < self.share_factor < math.inf:
            raise InputValueError(f"portable thresholds near={self.near}, share_factor={self.share_factor}: need "
                                  "0 < near <= 1 < share_factor")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for JSON: NaN as null, an infinite change as the string "inf" (strict JSON has neither)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        return v

    return [{k: clean(v) for k, v in row.items()} for row in frame.astype(object).to_dict(orient="records")]


# -------------------------------------------------------------------- helpers
def item(row: Any) -> str:
    return f"{row['case']} / {row['adapter']} [{row['dtype']}@{row['device']}]"


def bench_item(row: Any) -> str:
    tensors = f" x{int(row['n_tensors'])} tensors" if int(row["n_tensors"]) > 1 and row["layout"] != "model" else ""
    return (f"{row['bench']}: {row['adapter']} {row['variant']} [{row['dtype']}@{row['device']}] "
            f"{float(row['n_params']):.0e} params{tensors}")


def fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float | np.floating):
        return f"{x:.4g}"
    return str(x)


class Findings:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []

    def add(self, check: str, severity: str, item: str, message: str, figure: str = "", step: Any = None,
            baseline: Any = None, current: Any = None, change: float | None = None) -> None:
        self.rows.append({"check": check, "severity": severity, "item": item, "figure": figure,
                          "step": None if step is None else int(step), "baseline": fmt(baseline),
                          "current": fmt(current), "change": np.nan if change is None else float(change),
                          "message": message})

    def changed(self, check: str, item: str, figure: str, baseline: Any, current: Any, change: float | None = None,
                step: Any = None) -> None:
        self.changes.append({"check": check, "item": item, "figure": figure,
                             "step": None if step is None else int(step), "baseline": fmt(baseline),
                             "current": fmt(current), "change": np.nan if change is None else float(change)})


def index(frame: pd.DataFrame, key: list[str], what: str) -> pd.DataFrame:
    missing = [k for k in key if k not in frame.columns]
    if missing:
        raise BaselineError(f"{what}: no {', '.join(missing)} column (not a table this harness wrote)")
    frame = frame.copy()
    for k in key:
        if k in ("n_params", "n_tensors"):
            frame[k] = pd.to_numeric(frame[k], errors="coerce").fillna(-1).astype("int64")
        else:
            frame[k] = frame[k].fillna("").astype(str)
    if frame.duplicated(key).any():
        dup = frame[frame.duplicated(key)].iloc[0]
        raise BaselineError(f"{what}: duplicate rows for {', '.join(str(dup[k]) for k in key)}")
    return frame.set_index(key, drop=False)


def times(x: float) -> str:
    return "infinitely many times" if not math.isfinite(x) else f"{x:.3g}x"


def steps_text(steps: list) -> str:
    return ", ".join(map(str, steps[:5])) + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")


__all__ = ["CHANGE_COLUMNS", "FINDING_COLUMNS", "Findings", "Thresholds", "bench_item", "fmt", "index", "item",
           "records", "steps_text", "times"]
