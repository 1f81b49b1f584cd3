"""A conformance run's rows in memory, published to its run folder in atomic generations.

Rows arrive as shards (`harness.base.shards`), one per finished unit, in completion order; every
table is their concatenation in plan order, whether a shard was made now, resumed from an
earlier attempt or merged from another machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from harness.base import schema
from harness.base.runfolder import RunFolder
from harness.base.shards import Shard

#: Tables whose rows are sorted within a unit (by step, by bin); the others keep the unit's own order.
_WITHIN = {"divergence": "step", "ulp_histogram": "bin"}
_INTEGER = ("steps", "step", "bin", "count", "recorded", "expected")


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

    def __init__(self, out: Path | None, planned: int, kind: str = "conformance"):
        self.folder = RunFolder(out, kind, planned) if out is not None else None
        self.out = None if self.folder is None else self.folder.path
        self.shards: dict[int, Shard] = {}
        self.derived: dict[str, pd.DataFrame] = {}  # tables computed from the others at the end (the timeline)
        self.last = 0.0

    @property
    def finished(self) -> int:
        return len(self.shards)

    def add(self, shard: Shard) -> None:
        self.shards[shard.order] = shard

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table in plan order; the conformance tables always, the others when a unit has rows."""
        rows: dict[str, list[dict]] = {"summary": [], "divergence": [], "ulp_histogram": []}
        for order in sorted(self.shards):
            for name, table in self.shards[order].tables.items():
                rows.setdefault(name, []).extend({"_order": order, **r} for r in table)
        out = {name: self._ordered(table, schema.COLUMNS[name], _WITHIN.get(name)) for name, table in rows.items()}
        return out | self.derived

    @staticmethod
    def _ordered(rows: list[dict], columns: list[str], then: str | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["_order", *columns])
        frame = frame.sort_values(["_order", *([then] if then else [])], kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        for col in _INTEGER:
            if col in frame and len(frame) and frame[col].notna().all():
                frame[col] = frame[col].astype("int64")
        return frame

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
