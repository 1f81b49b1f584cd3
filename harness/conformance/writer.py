"""A conformance run's rows in memory, published to its run folder in atomic generations."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from harness.base import schema
from harness.base.runfolder import RunFolder


def _publish_every() -> float:
    """Seconds between generations written while a run goes on (``RMSPROP_HARNESS_PUBLISH_EVERY``: a test and
    debugging knob; 0 writes one after every task)."""
    try:
        return max(0.0, float(os.environ.get("RMSPROP_HARNESS_PUBLISH_EVERY", "2")))
    except ValueError:
        return 2.0


PUBLISH_EVERY = _publish_every()


class RunWriter:
    """The run's rows in memory and, with an output folder, its published generations."""

    def __init__(self, out: Path | None, planned: int):
        self.folder = RunFolder(out, "conformance", planned) if out is not None else None
        self.out = None if self.folder is None else self.folder.path
        self.summary: list[dict] = []
        self.divergence: list[dict] = []
        self.ulp: list[dict] = []
        self.extra: dict[str, pd.DataFrame] = {}  # the parity tables
        self.finished = 0
        self.last = 0.0

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table in plan order (rows arrive in completion order)."""
        out = {"summary": self._ordered(self.summary, schema.SUMMARY),
               "divergence": self._ordered(self.divergence, schema.DIVERGENCE, "step"),
               "ulp_histogram": self._ordered(self.ulp, schema.ULP_HISTOGRAM, "bin")}
        return out | self.extra

    @staticmethod
    def _ordered(rows: list[dict], columns: list[str], then: str | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["_order", *columns])
        frame = frame.sort_values(["_order", *([then] if then else [])], kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        for col in ("steps", "step", "bin", "count", "recorded", "expected"):
            if col in frame:
                frame[col] = frame[col].astype("int64")
        return frame

    def add(self, order: int, summary: dict | None, rows: list[dict] = (), ulp: list[dict] = ()) -> None:
        self.finished += 1
        if summary is not None:
            self.summary.append({"_order": order, **summary})
            self.divergence.extend({"_order": order, **r} for r in rows)
            self.ulp.extend({"_order": order, **r} for r in ulp)

    def due(self) -> bool:
        """Whether a generation is due (one at most every `PUBLISH_EVERY` seconds)."""
        return self.folder is not None and time.monotonic() - self.last >= PUBLISH_EVERY

    def publish(self, env: dict, complete: bool = False) -> None:
        """A new generation of every table on disk."""
        if self.folder is not None:
            self.folder.publish(self.tables(), env, self.finished, complete)
            self.last = time.monotonic()

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()


__all__ = ["PUBLISH_EVERY", "RunWriter"]
