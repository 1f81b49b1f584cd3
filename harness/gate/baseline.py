"""Baselines: what `harness.gate` compares a run against, small enough to commit.

``rmsprop-harness baseline save RUN_DIR [RUN_DIR ...] --to reports/baseline`` keeps, from
a conformance run folder and/or a bench folder:

* ``summary.parquet``: every conformance row (status, reason, final figures);
* ``divergence.parquet``: the gated figures at every recorded step (`GATED_FIGURES`),
  without the columns the gate does not read;
* ``parity.parquet``: the cross-framework pairs (verdicts and divergences);
* ``throughput.parquet``: every bench point with its raw samples (``sample_s``);
* ``baseline.json``: the format version, each source's ``env.json`` (machine, versions,
  git revision, suite) and the SHA-256 of every table, so an edited or truncated file is
  refused (`BaselineError`, exit 2) instead of being compared.

The default suite's baseline is about 110 kB. `load_run_tables` reads run folders into the
same shape, so the gate compares like with like.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import runfolder, schema
from reference.errors import InputValueError

FORMAT = "rmsprop-harness-baseline"
VERSION = 2  # 2: tolerance columns and the machine fingerprint (portable comparisons)
MANIFEST = "baseline.json"
CONFORMANCE_KEY = schema.KEYS["summary"]
THROUGHPUT_KEY = schema.KEYS["throughput"]
PARITY_KEY = schema.KEYS["parity"]
#: Divergence figures the gate compares at every recorded step: the parameters' ULP error
#: (worst element and typical element) and every error in units of the rounding budget.
GATED_FIGURES = ("max_ulp", "median_ulp", "budget_ratio", "nu_budget_ratio", "mu_budget_ratio",
                 "trace_budget_ratio")
#: Each budget-ratio figure with the tolerance it is judged against (share of tolerance, across machines).
SHARES = {"budget_ratio": "tolerance", "nu_budget_ratio": "nu_tolerance", "mu_budget_ratio": "mu_tolerance",
          "trace_budget_ratio": "trace_tolerance"}
KEPT_DIVERGENCE = (*GATED_FIGURES, *SHARES.values())
TABLES = ("summary", "divergence", "parity", "throughput")


class BaselineError(InputValueError):
    """An unreadable, corrupted or mismatched baseline or run folder; one line."""


@dataclass
class Tables:
    """A run (one or more folders) or a baseline: its tables (empty frames when absent) and envs."""

    path: str
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    divergence: pd.DataFrame = field(default_factory=pd.DataFrame)
    parity: pd.DataFrame = field(default_factory=pd.DataFrame)
    throughput: pd.DataFrame = field(default_factory=pd.DataFrame)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "conformance" / "throughput" -> env.json
    manifest: dict[str, Any] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # folders an interrupted run left: "DIR: 8 of 16 tasks"

    @property
    def complete(self) -> bool:
        return not self.incomplete

    def filters(self, kind: str = "conformance") -> dict[str, Any]:
        """The command-line filters the run was made with (--case, --dtype, ...), those that were set."""
        return {k: v for k, v in ((self.envs.get(kind) or {}).get("filters") or {}).items() if v}

    def fingerprint(self, kind: str = "conformance") -> dict[str, Any] | None:
        return (self.envs.get(kind) or {}).get("fingerprint")

    @property
    def conformance(self) -> bool:
        return len(self.summary) > 0

    @property
    def bench(self) -> bool:
        return len(self.throughput) > 0

    def suites(self, kind: str) -> list[str]:
        frame = self.summary if kind == "conformance" else self.throughput
        return sorted(frame["suite"].dropna().unique().tolist()) if "suite" in frame else []

    def describe(self) -> dict[str, Any]:
        """Identity for the gate's output: path, suites, git revision, when."""
        out: dict[str, Any] = {"path": self.path}
        for kind, env in self.envs.items():
            git = env.get("git") or {}
            out[kind] = {"suite": (env.get("suite") or {}).get("name"), "git": git.get("revision"),
                         "dirty": git.get("dirty"), "started": env.get("started"), "cpu": env.get("cpu")}
        if self.manifest:
            out["saved"] = self.manifest.get("created")
        return out


def _read_parquet(file: Path) -> pd.DataFrame:
    try:
        return runfolder.read_parquet(file)
    except runfolder.RunFolderError as exc:
        raise BaselineError(str(exc)) from None


def _read_json(file: Path) -> dict[str, Any]:
    try:
        return runfolder.read_json(file)
    except runfolder.RunFolderError as exc:
        raise BaselineError(str(exc)) from None


def load_run_tables(run_dirs: list[str | Path]) -> Tables:
    """The tables of one or more run folders, read through their manifests (a conformance run and a bench
    run may be combined; two folders may not both hold the same table). An interrupted run is read as
    far as it got and listed in ``incomplete``."""
    if not run_dirs:
        raise BaselineError("no run folder given")
    tables = Tables(", ".join(str(d) for d in run_dirs))
    for run_dir in map(Path, run_dirs):
        try:
            loaded = runfolder.load(run_dir, ("summary", "divergence", "parity", "throughput"))
        except runfolder.RunFolderError as exc:
            raise BaselineError(str(exc)) from None
        found = [t for t in TABLES if t in loaded.tables]
        for name in found:
            if len(getattr(tables, name).columns):
                raise BaselineError(f"{run_dir}: a second {name}.parquet (each table may come from one folder only)")
            setattr(tables, name, loaded.tables[name])
        kind = "throughput" if loaded.kind == "bench" else "conformance"
        tables.envs[kind] = loaded.env
        if not loaded.complete:
            tables.incomplete.append(f"{run_dir}: {loaded.progress()}")
    return tables


def _sha256(file: Path) -> str:
    try:
        return hashlib.sha256(runfolder.read_bytes(file)).hexdigest()
    except runfolder.RunFolderError as exc:
        raise BaselineError(str(exc)) from None


def save_baseline(run_dirs: list[str | Path], to: str | Path = "reports/baseline") -> Path:
    """Store the run folders' gated tables in ``to`` (replaced as a whole: written to a temporary
    folder beside it, then renamed, so an interrupted save leaves the old baseline intact). An
    interrupted run is refused; a filtered one keeps its filters, which the gate compares."""
    tables = load_run_tables(run_dirs)
    if tables.incomplete:
        raise BaselineError(f"{tables.incomplete[0]} finished (an interrupted run); not saved as a baseline")
    return write_baseline(tables, to, [str(d) for d in run_dirs])


def write_baseline(tables: Tables, to: str | Path, sources: list[str]) -> Path:
    if str(to).strip() == "":
        raise BaselineError("--to '': give the baseline folder")
    try:
        target = runfolder.check_path(to, "--to")
    except runfolder.RunFolderError as exc:
        raise BaselineError(str(exc)) from None
    if target.exists() and not target.is_dir():
        raise BaselineError(f"{target}: exists and is not a folder")
    for path in (target, target.parent):
        if path.is_symlink():
            raise BaselineError(f"{path}: is a symlink; refusing to write a baseline through it")
    if (target / runfolder.MANIFEST).exists():
        raise BaselineError(f"{target}: is a run folder (run.json), not a baseline; not overwritten")
    keep = {
        "summary": tables.summary,
        "divergence": tables.divergence[[c for c in (*CONFORMANCE_KEY, "step", *KEPT_DIVERGENCE)
                                         if c in tables.divergence]] if len(tables.divergence.columns) else None,
        "parity": tables.parity,
        "throughput": tables.throughput,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        files = {}
        for name, frame in keep.items():
            if frame is not None and len(frame.columns):
                file = tmp / f"{name}.parquet"
                frame.to_parquet(file, index=False)
                files[file.name] = _sha256(file)
        manifest = {"format": FORMAT, "version": VERSION, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "sources": sources, "files": files, "env": tables.envs}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        old = None
        if target.exists():
            if not (target / MANIFEST).is_file() and any(target.iterdir()):
                raise BaselineError(f"{target}: exists and is not a baseline (no {MANIFEST}); not overwritten")
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        tmp.chmod(0o755)  # mkdtemp makes it private; a baseline is meant to be shared and committed
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_baseline(path: str | Path) -> Tables:
    """A saved baseline, verified against its manifest (format, version, checksums)."""
    try:
        root = runfolder.check_path(path, "baseline")
    except runfolder.RunFolderError as exc:
        raise BaselineError(str(exc)) from None
    if not root.is_dir():
        raise BaselineError(f"{root}: no such baseline folder (make one with rmsprop-harness baseline save RUN_DIR)")
    if not (root / MANIFEST).is_file():
        raise BaselineError(f"{root}: not a baseline (no {MANIFEST}; make one with rmsprop-harness baseline save)")
    manifest = _read_json(root / MANIFEST)
    if manifest.get("format") != FORMAT:
        raise BaselineError(f"{root / MANIFEST}: not an rmsprop-harness baseline (format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise BaselineError(f"{root / MANIFEST}: baseline format version {manifest.get('version')!r}, this harness "
                            f"reads version {VERSION}; re-save it with rmsprop-harness baseline save")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BaselineError(f"{root / MANIFEST}: lists no tables")
    envs = manifest.get("env") if isinstance(manifest.get("env"), dict) else {}
    tables = Tables(str(root), envs={k: runfolder._clean_env(v) for k, v in envs.items()}, manifest=manifest)
    for name, digest in files.items():
        file = root / name
        stem = name.removesuffix(".parquet")
        if stem not in TABLES:
            raise BaselineError(f"{root / MANIFEST}: unknown table {name!r}")
        if not file.is_file() or file.is_symlink():
            raise BaselineError(f"{file}: missing (listed in {MANIFEST})")
        if _sha256(file) != digest:
            raise BaselineError(f"{file}: does not match its checksum in {MANIFEST} (corrupted or edited); "
                                "re-save the baseline with rmsprop-harness baseline save")
        setattr(tables, stem, _read_parquet(file))
    return tables


__all__ = ["GATED_FIGURES", "BaselineError", "Tables", "load_baseline", "load_run_tables", "save_baseline",
           "write_baseline"]
