"""Write run folders by hand for tests: tables padded to the schema's columns, published like a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.base import schema
from harness.base.runfolder import RunFolder


def padded(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column of table ``name`` (missing ones NaN), in the schema's order first."""
    frame = frame.copy()
    for column in schema.COLUMNS[name]:
        if column not in frame:
            frame[column] = np.nan
    rest = [c for c in frame.columns if c not in schema.COLUMNS[name]]
    return frame[[*schema.COLUMNS[name], *rest]]


def write_run(path: str | Path, tables: dict[str, pd.DataFrame], env: dict[str, Any], kind: str = "conformance",
              complete: bool = True, planned: int | None = None, finished: int | None = None) -> Path:
    rows = len(tables.get("summary", tables.get("throughput", [])))
    folder = RunFolder(path, kind, planned if planned is not None else rows)
    try:
        folder.publish({n: padded(n, f) for n, f in tables.items()}, env,
                       finished if finished is not None else rows, complete)
    finally:
        folder.close()
    return Path(path)
