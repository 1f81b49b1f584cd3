"""A run folder as the report reads it: its tables (text columns as strings), environment and manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import runfolder, schema

REPORT_TABLES = schema.TABLES  # a conformance run folder, a bench folder, or both


class ReportError(runfolder.RunFolderError):
    """Not a run folder or unreadable tables; one line."""


@dataclass
class Run:
    """A run folder's tables (missing optional ones are empty frames), its environment and manifest."""

    path: Path
    tables: dict[str, pd.DataFrame]
    env: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=lambda: {"complete": True})

    @property
    def summary(self) -> pd.DataFrame:
        summary = self.tables["summary"]
        return summary if len(summary.columns) else pd.DataFrame(columns=["suite", "case", "adapter", "status"])

    @property
    def throughput(self) -> pd.DataFrame:
        return self.tables["throughput"]

    @property
    def training(self) -> bool:
        return not self.tables.get("training_runs", pd.DataFrame()).empty

    @property
    def conformance(self) -> bool:
        return bool(len(self.tables["summary"].columns))

    @property
    def suite(self) -> str:
        return str(self.env.get("suite", {}).get("name") or (self.summary["suite"].iloc[0] if len(self.summary)
                                                             else self.path.name))

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def progress(self) -> str:
        return f"{self.manifest.get('finished')} of {self.manifest.get('planned')} tasks finished"

    def statuses(self) -> pd.Series:
        """Each row's status; a value this harness does not write counts as an error."""
        status = self.summary["status"]
        return status.where(status.isin(schema.STATUSES), "error")

    def counts(self) -> dict[str, int]:
        statuses = self.statuses()
        return {s: int((statuses == s).sum()) for s in schema.STATUSES}

    @property
    def passed(self) -> bool:
        """Every row ok, unsupported or skipped, and the run finished."""
        return self.complete and bool(self.statuses().isin(schema.PASSING).all())


def load_run(run_dir: str | Path) -> Run:
    """A run folder through its manifest (`harness.base.runfolder.load`); `ReportError` with one line."""
    try:
        loaded = runfolder.load(run_dir)
    except runfolder.RunFolderError as exc:
        raise ReportError(str(exc)) from None
    tables = {name: _text(loaded.tables.get(name, pd.DataFrame())) for name in REPORT_TABLES}
    return Run(loaded.path, tables, loaded.env, loaded.manifest)


_TEXT = ("suite", "case", "adapter", "framework", "preset", "device", "device_name", "dtype", "stream", "status",
         "reason", "warnings", "args", "scenario", "a", "b", "verdict", "differing", "knob", "label", "source",
         "value_a", "value_b", "without_verdict", "knob_a", "knob_b", "bench", "variant", "layout", "description")


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings (a missing value as empty text): the report never trips on a stray null."""
    frame = frame.copy()
    for column in _TEXT:
        if column in frame:
            frame[column] = frame[column].where(frame[column].notna(), "").astype(str)
    return frame


__all__ = ["REPORT_TABLES", "ReportError", "Run", "load_run"]
