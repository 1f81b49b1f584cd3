"""The results store: every run and bench appended to one embedded DuckDB file, keyed by commit, fingerprint and
package versions.

Two tables. ``runs``: one row per appended run folder (its id is the digest of its env.json and its path, so
appending a folder twice adds nothing), with the git commit it was made at (or the one given), whether the tree
was dirty, when it ran, the machine fingerprint, the package versions and where it came from. ``points``: one row
per run, series and metric, long format. A series is what one row of a table measures: for a conformance run each task
(``suite/case/adapter/device/dtype``) with its worst rounding-budget ratio, its share of the tolerance and its
largest ULP error; for a bench run each point (``suite/bench/adapter/variant/device/dtype/n_params/layout``)
with its median step time and GB/s. DuckDB (embedded, one file, SQL over it) because the history is queried
by series and commit, grows without bound, and needs no server; the file is ``reports/history.duckdb`` unless
``--store`` or ``RMSPROP_HARNESS_HISTORY`` says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.base import runfolder
from reference.errors import InputValueError

DEFAULT_STORE = "reports/history.duckdb"
#: (table, key columns, metric columns) per run kind
SERIES = {
    "conformance": ("summary", ["suite", "case", "adapter", "device", "dtype"],
                    ["worst_budget_ratio", "tolerance_used", "max_ulp"]),
    "bench": ("throughput", ["suite", "bench", "adapter", "variant", "device", "dtype", "n_params", "layout"],
              ["median_s", "gb_per_s"]),
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, kind VARCHAR, commit VARCHAR, dirty BOOLEAN,
    started VARCHAR, fingerprint VARCHAR, cpu VARCHAR, versions VARCHAR, suite VARCHAR, source VARCHAR,
    appended VARCHAR);
CREATE TABLE IF NOT EXISTS points (run_id VARCHAR, series VARCHAR, metric VARCHAR, value DOUBLE);
"""


class HistoryError(InputValueError):
    """A store or run folder that cannot be used; one line."""


def store_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("RMSPROP_HARNESS_HISTORY") or DEFAULT_STORE)


@dataclass
class Store:
    """One DuckDB file; opened per call (an append and a reader never hold it open together)."""

    path: Path

    def _connect(self, read_only: bool = False):
        import duckdb

        if self.path.is_symlink():
            raise HistoryError(f"{self.path}: is a symlink; refusing to open a store through it")
        if read_only and not self.path.is_file():
            raise HistoryError(f"{self.path}: no such history store (append runs with: rmsprop-harness history "
                               "append RUN_DIR ...)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise HistoryError(f"{self.path}: not a history store ({str(exc).splitlines()[0]})") from None
        if not read_only:
            con.execute(_SCHEMA)
        return con

    def append(self, run_dir: str | Path, commit: str | None = None) -> tuple[str, int]:
        """Add one run folder (a conformance run or a bench); (its run id, points added: 0 when it was there)."""
        try:
            loaded = runfolder.load(Path(run_dir), ("summary", "throughput"))
        except runfolder.RunFolderError as exc:
            raise HistoryError(str(exc)) from None
        if not loaded.complete:
            raise HistoryError(f"{run_dir}: an incomplete run ({loaded.progress()}); only finished runs join the "
                               "history")
        kind = "bench" if loaded.kind == "bench" else "conformance"
        table, keys, metrics = SERIES[kind]
        frame = loaded.tables.get(table)
        if frame is None or not len(frame):
            raise HistoryError(f"{run_dir}: no {table} rows")
        env = loaded.env
        # the env.json and the folder: appending a folder twice is a no-op, and two replicate runs (bitwise the same
        # tables, started in the same second) stay two samples of the noise
        identity = {"env": env, "folder": str(Path(run_dir).resolve())}
        run_id = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
        git = env.get("git") or {}
        rev = commit or git.get("revision")
        if not rev:
            raise HistoryError(f"{run_dir}: env.json has no git revision; give the commit with --commit")
        points = _points(frame, keys, metrics, run_id)
        suite = (env.get("suite") or {}).get("name") if isinstance(env.get("suite"), dict) else env.get("suite")
        con = self._connect()
        try:
            if con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]:
                return run_id, 0
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                run_id, kind, str(rev), bool(git.get("dirty")) if commit is None else False,
                str(env.get("started") or ""), str(env.get("fingerprint") or ""), str(env.get("cpu") or ""),
                json.dumps(env.get("packages") or {}, sort_keys=True), str(suite or ""), str(Path(run_dir).resolve()),
                pd.Timestamp.now("UTC").isoformat()])
            con.register("new_points", points)
            con.execute("INSERT INTO points SELECT run_id, series, metric, value FROM new_points")
            con.execute("COMMIT")
        finally:
            con.close()
        return run_id, len(points)

    def frame(self) -> pd.DataFrame:
        """Every point with its run's commit, time and fingerprint, in the order the runs were made."""
        con = self._connect(read_only=True)
        try:
            return con.execute("""
                SELECT r.run_id, r.kind, r.commit, r.started, r.fingerprint, r.appended, p.series, p.metric, p.value
                FROM points p JOIN runs r USING (run_id) ORDER BY r.started, r.appended, r.run_id""").df()
        finally:
            con.close()

    def runs(self) -> pd.DataFrame:
        con = self._connect(read_only=True)
        try:
            return con.execute("SELECT * FROM runs ORDER BY started, appended, run_id").df()
        finally:
            con.close()


def _points(frame: pd.DataFrame, keys: list[str], metrics: list[str], run_id: str) -> pd.DataFrame:
    have = [m for m in metrics if m in frame]
    key = frame[keys].astype(str).agg("/".join, axis=1)
    long = pd.DataFrame({"series": key, **{m: pd.to_numeric(frame[m], errors="coerce") for m in have}})
    long = long.melt(id_vars="series", var_name="metric", value_name="value").dropna(subset=["value"])
    long.insert(0, "run_id", run_id)
    return long.reset_index(drop=True)


__all__ = ["DEFAULT_STORE", "SERIES", "HistoryError", "Store", "store_path"]
