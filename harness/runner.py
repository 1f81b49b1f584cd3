"""The conformance run: a suite -> tasks -> isolated workers -> divergence tables on disk.

`run_suite` plans one task per case x adapter x device x dtype, runs each
framework in its own worker process (at most ``jobs`` at a time), computes the
float64 reference once per case, preset, arguments and dtype, and measures every
recorded snapshot against it (`harness.metrics`). Rows are written to the run
folder as they arrive (``divergence.parquet``, ``summary.parquet``, ``env.json``;
each rewritten atomically), so an interrupted run keeps what it finished.

The ``warnings`` column lists what the framework silently rewrites or ignores in the
arguments given (``epsilon=0`` becoming 1e-7 in tf_keras legacy, ``lr=`` ignored by
tf_keras, a float32 clip factor on Keras' torch backend, ...), separated by `` | ``.

Status of a summary row: ``ok`` (within tolerance at every recorded step),
``fail`` (the reason names the first quantity and step out of tolerance),
``unsupported`` (the framework cannot express the requested semantics or dtype),
``skipped`` (framework or device not present) or ``error`` (the framework raised,
crashed or timed out; the reason says which).
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reference import RMSpropSpec
from reference.budget import run_tolerance, state_tolerance
from reference.translate import Unsupported

from .adapters import ADAPTERS, BUILTIN, STATE_KINDS, Task, resolve
from .adapters._common import cpu_name, package_version
from .metrics import ULP_LABELS, ReferencePoint, divergence, record_steps, reference_points, ulp_histogram
from .parity import ATTRIBUTION_COLUMNS, PAIR_COLUMNS, parity
from .suite import Case, Suite, load_suite
from .worker import run_worker

STATUSES = ("ok", "fail", "unsupported", "skipped", "error")
WARNING_SEPARATOR = " | "
FRAMEWORK_PACKAGES = ("torch", "tensorflow", "tf_keras", "keras", "jax", "jaxlib", "optax")
SUMMARY_COLUMNS = [
    "suite", "case", "adapter", "framework", "preset", "device", "device_name", "dtype", "stream", "steps",
    "status", "reason", "warnings", "max_abs_err", "max_rel_err", "max_ulp", "median_ulp", "budget_ratio", "tolerance",
    "worst_budget_ratio", "tolerance_used", "nonfinite_mismatch", *(f"{k}_budget_ratio" for k in STATE_KINDS),
    "seconds", "args",
]
_STATE_METRICS = ("max_abs_err", "max_rel_err", "budget_ratio", "tolerance", "nonfinite_mismatch")
DIVERGENCE_COLUMNS = [
    "suite", "case", "adapter", "framework", "device", "dtype", "step", "max_abs_err", "max_rel_err", "max_ulp",
    "median_ulp", "budget_ratio", "tolerance", "nonfinite_mismatch",
    *(f"{k}_{m}" for k in STATE_KINDS for m in _STATE_METRICS),
]
ULP_COLUMNS = ["suite", "case", "adapter", "framework", "device", "dtype", "step", "bin", "label", "count"]
#: Every table of a run folder, by file stem.
TABLES = ("summary", "divergence", "ulp_histogram", "parity", "attribution")


class RunError(ValueError):
    """Bad run options (no task selected, unknown adapter); one line."""


@dataclass
class Planned:
    """One case x adapter x device x dtype, with the semantics its framework will run."""

    case: Case
    adapter: str
    device: str
    dtype: str
    spec: RMSpropSpec | None
    task: Task | None
    reason: str = ""  # why it is unsupported (then task is None)

    @cached_property
    def key(self) -> tuple:
        """Tasks with equal keys share one reference trajectory."""
        return (self.case.name, self.spec, json.dumps(self.task.kwargs, sort_keys=True, default=str), self.dtype)


@dataclass
class RunResult:
    divergence: pd.DataFrame
    summary: pd.DataFrame
    env: dict[str, Any]
    out: Path | None = None
    ulp_histogram: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ULP_COLUMNS))
    parity: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))
    attribution: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ATTRIBUTION_COLUMNS))

    @property
    def exit_code(self) -> int:
        """0 when every row is ok/unsupported/skipped, 1 when any failed or errored."""
        return 1 if self.summary["status"].isin(["fail", "error"]).any() else 0

    def counts(self) -> dict[str, int]:
        return {s: int((self.summary["status"] == s).sum()) for s in STATUSES}


# ------------------------------------------------------------------- planning
def plan(
    suite: Suite,
    adapters: list[str] | None = None,
    devices: list[str] | None = None,
    dtypes: list[str] | None = None,
    cases: list[str] | None = None,
) -> list[Planned]:
    """Every task of ``suite``; ``adapters`` filters (names or families), ``devices`` and
    ``dtypes`` replace the cases' own, ``cases`` filters by name (shell patterns)."""
    try:
        selected = resolve(adapters) if adapters else None
    except KeyError as exc:
        raise RunError(str(exc.args[0])) from None
    wanted = set(selected) if selected else None
    users = [a for a in selected or [] if a not in BUILTIN]  # user adapters join the cases they fit
    out: list[Planned] = []
    for case in suite.cases:
        if cases and not any(fnmatch.fnmatchcase(case.name, p) for p in cases):
            continue
        params0, lrs = case.params0(), case.lrs()
        steps = record_steps(case.steps, case.records)
        for adapter in (*case.adapters, *(u for u in users if u not in case.adapters and _joins(case, u))):
            if wanted is not None and adapter not in wanted:
                continue
            if devices:
                device_list = [(d, False) for d in devices]
            elif case.devices == "auto":  # cpu when the adapter runs there; a gpu only if one is visible
                device_list = [(d, d != "cpu") for d in ADAPTERS[adapter].devices]
            else:
                device_list = [(d, False) for d in case.devices]
            try:
                native, spec, reason = case.native(adapter), case.reference_spec(adapter), ""
            except Unsupported as exc:
                native, spec, reason = None, None, str(exc)
            for device, optional in device_list:
                if native is None and optional:
                    continue  # an unsupported row for a device that may not exist says nothing
                for dtype in dtypes or case.dtypes:
                    task = None if native is None else Task(
                        adapter, native, case.stream, case.shapes, params0, case.steps, dtype, device, steps, lrs,
                        optional, case.timeout)
                    out.append(Planned(case, adapter, device, dtype, spec, task, reason))
    if not out:
        what = f" matches --adapter {','.join(adapters)}" if adapters else ""
        raise RunError(f"no task{what} in suite {suite.name!r}")
    return out


def _joins(case: Case, adapter: str) -> bool:
    """Whether a user adapter named on the command line runs in ``case``: wherever the case's
    semantics reach it (a ``spec``, no arguments at all, or arguments for its family), or
    where an adapter of its family runs."""
    family = ADAPTERS[adapter].family
    return (case.spec is not None or case.args is None or family in case.args
            or any(ADAPTERS[a].family == family for a in case.adapters))


# -------------------------------------------------------------------- verdict
def _verdict(rows: list[dict]) -> tuple[str, str, float]:
    """(status, reason, tolerance_used) from the divergence rows of one task."""
    used, first = 0.0, None
    for row in rows:
        checks = [("parameters", "")] + [(f"state {k}", f"{k}_") for k in STATE_KINDS
                                         if not pd.isna(row.get(f"{k}_budget_ratio"))]
        for what, col in checks:  # col: the divergence columns' prefix ("" for the parameters)
            ratio, tol, nonfinite = row[f"{col}budget_ratio"], row[f"{col}tolerance"], row[f"{col}nonfinite_mismatch"]
            used = max(used, ratio / tol)
            if first is None and nonfinite:
                first = f"{what}: {int(nonfinite)} positions non-finite on one side only at step {row['step']}"
            elif first is None and ratio > tol:
                first = (f"{what}: {ratio:.3g} budgets > tolerance {tol:.3g} at step {row['step']} "
                         f"(max abs err {row[f'{col}max_abs_err']:.3g}, max rel err {row[f'{col}max_rel_err']:.3g})")
    if first is not None:
        return "fail", first, used
    return "ok", f"within {used:.1%} of the rounding tolerance", used


def _rows(planned: Planned, snapshots: list, points: dict[int, ReferencePoint], suite: str) -> list[dict]:
    rows = []
    info = ADAPTERS[planned.adapter]
    for snap in snapshots:
        point = points[snap.step]
        metrics = divergence(snap, point, planned.dtype)
        row = {"suite": suite, "case": planned.case.name, "adapter": planned.adapter, "framework": info.family,
               "device": planned.device, "dtype": planned.dtype, "step": snap.step, **metrics,
               "tolerance": run_tolerance(planned.spec, snap.step, planned.dtype)}
        for kind in STATE_KINDS:
            if f"{kind}_budget_ratio" in metrics:
                row[f"{kind}_tolerance"] = state_tolerance(planned.spec, snap.step, planned.dtype, kind)
        rows.append({c: row.get(c, np.nan) for c in DIVERGENCE_COLUMNS})
    return rows


def _ulp_rows(planned: Planned, snapshots: list, points: dict[int, ReferencePoint], suite: str) -> list[dict]:
    """The per-element ULP histogram of the parameters at the last recorded step."""
    if not snapshots:
        return []
    last = snapshots[-1]
    counts = ulp_histogram(last, points[last.step], planned.dtype)
    base = {"suite": suite, "case": planned.case.name, "adapter": planned.adapter,
            "framework": ADAPTERS[planned.adapter].family, "device": planned.device, "dtype": planned.dtype,
            "step": last.step}
    return [{**base, "bin": i, "label": label, "count": n} for i, (label, n) in enumerate(zip(ULP_LABELS, counts,
                                                                                               strict=True))]


def _summary(planned: Planned, suite: str, status: str, reason: str, rows: list[dict] | None = None,
             payload: dict | None = None, used: float = np.nan) -> dict:
    info = ADAPTERS[planned.adapter]
    row: dict[str, Any] = {
        "suite": suite, "case": planned.case.name, "adapter": planned.adapter, "framework": info.family,
        "preset": info.preset, "device": planned.device, "dtype": planned.dtype,
        "stream": planned.case.stream.label(), "steps": planned.case.steps, "status": status, "reason": reason,
        "warnings": WARNING_SEPARATOR.join(planned.spec.notes) if planned.spec is not None else "",
        "args": json.dumps(planned.task.kwargs if planned.task else planned.case.spec.knobs() if planned.case.spec
                           else {}, sort_keys=True, default=str),
    }
    if payload is not None:
        row["seconds"] = payload.get("seconds", np.nan)
        row["device_name"] = payload.get("device_name", "")
    if rows:
        last = rows[-1]
        row |= {k: last[k] for k in ("max_abs_err", "max_rel_err", "max_ulp", "median_ulp", "budget_ratio",
                                     "tolerance", "nonfinite_mismatch")}
        row |= {f"{k}_budget_ratio": last[f"{k}_budget_ratio"] for k in STATE_KINDS}
        row["worst_budget_ratio"] = max(r["budget_ratio"] for r in rows)
        row["tolerance_used"] = used
    return {c: row.get(c, np.nan) for c in SUMMARY_COLUMNS}


# ------------------------------------------------------------------- writing
class RunWriter:
    """The run folder; every file is rewritten atomically after each task."""

    def __init__(self, out: Path | None):
        self.out = out
        self.summary: list[dict] = []
        self.divergence: list[dict] = []
        self.ulp: list[dict] = []
        self.parity = pd.DataFrame(columns=PAIR_COLUMNS)
        self.attribution = pd.DataFrame(columns=ATTRIBUTION_COLUMNS)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for stale in (*(f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")), "env.json", "report.md",
                          "report.html", "gate.md", "gate.json"):
                (out / stale).unlink(missing_ok=True)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The tables in plan order (rows arrive in completion order)."""
        return self._ordered(self.divergence, DIVERGENCE_COLUMNS, "step"), self._ordered(self.summary,
                                                                                          SUMMARY_COLUMNS)

    def ulp_frame(self) -> pd.DataFrame:
        return self._ordered(self.ulp, ULP_COLUMNS, "bin")

    @staticmethod
    def _ordered(rows: list[dict], columns: list[str], then: str | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["_order", *columns])
        frame = frame.sort_values(["_order", *([then] if then else [])], kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        for col in ("steps", "step", "bin", "count"):
            if col in frame:
                frame[col] = frame[col].astype("int64")
        return frame

    def add(self, order: int, summary: dict, rows: list[dict], ulp: list[dict] = ()) -> None:
        self.summary.append({"_order": order, **summary})
        self.divergence.extend({"_order": order, **r} for r in rows)
        self.ulp.extend({"_order": order, **r} for r in ulp)
        self.flush()

    def flush(self, env: dict | None = None) -> None:
        if self.out is None:
            return
        div, summary = self.frames()
        tables = {"divergence": div, "summary": summary, "ulp_histogram": self.ulp_frame()}
        if len(self.parity):
            tables |= {"parity": self.parity, "attribution": self.attribution}
        for name, frame in tables.items():
            _atomic(self.out / f"{name}.parquet", lambda p, f=frame: f.to_parquet(p, index=False))
        if env is not None:
            _atomic(self.out / "env.json", lambda p: p.write_text(json.dumps(env, indent=2, default=str)))


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------ environment
def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"revision": rev, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def environment(suite: Suite) -> dict[str, Any]:
    """Versions, machine, suite identity and seeds: what a reader needs to reproduce a run."""
    return {
        "harness": package_version("rmsprop-harness"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "packages": {p: package_version(p) for p in ("numpy", "pandas", "pyarrow", *FRAMEWORK_PACKAGES)},
        "workers": {},
        "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
        "seeds": {c.name: c.seed for c in suite.cases},
        "git": _git(),
        "command": sys.argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------ run
@dataclass
class _References:
    """Reference trajectories shared by the tasks with the same `Planned.key`, computed on first use."""

    remaining: dict[tuple, int] = field(default_factory=dict)  # reference key -> tasks still to compare
    cache: dict[tuple, dict[int, ReferencePoint]] = field(default_factory=dict)

    def get(self, p: Planned) -> dict[int, ReferencePoint]:
        key = p.key
        if key not in self.cache:
            self.cache[key] = reference_points(p.spec, p.case.gradient_stream(), p.task.params0, p.case.steps,
                                               p.dtype, p.task.record_steps, p.task.lrs)
        points = self.cache[key]
        self.release(p)
        return points

    def release(self, p: Planned) -> None:
        """One task of this reference is finished; drop the reference after the last one."""
        self.remaining[p.key] -= 1
        if not self.remaining[p.key]:
            self.cache.pop(p.key, None)  # memory: only the references still needed are kept


def run_suite(
    suite: Suite | str | Path,
    *,
    adapters: list[str] | None = None,
    devices: list[str] | None = None,
    dtypes: list[str] | None = None,
    cases: list[str] | None = None,
    out: str | Path | None = "reports/latest",
    jobs: int | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    parity_scenarios: bool | None = None,
) -> RunResult:
    """Run ``suite`` (a `Suite`, a built-in name or a path) and return the DataFrames.

    ``out=None`` keeps everything in memory. ``progress(done, total, summary_row)`` is
    called after each task. The suite's ``[[parity]]`` scenarios (`harness.parity`) are
    computed too, unless ``cases`` selects a subset (then only with ``parity_scenarios=True``)
    or ``parity_scenarios=False``.
    """
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    tasks = plan(suite, adapters, devices, dtypes, cases)
    writer = RunWriter(Path(out) if out is not None else None)
    env = environment(suite)
    started = time.perf_counter()
    writer.flush(env)
    references = _References()
    done = 0

    def finish(i: int, summary: dict | None, rows: list[dict], ulp: list[dict] = ()) -> None:
        nonlocal done
        done += 1
        if summary is not None:
            writer.add(i, summary, rows, ulp)
        if progress is not None:
            progress(done, len(tasks), summary or {})

    runnable: list[int] = []
    for i, p in enumerate(tasks):
        if p.task is None:
            finish(i, _summary(p, suite.name, "unsupported", p.reason), [])
        else:
            runnable.append(i)
            references.remaining[p.key] = references.remaining.get(p.key, 0) + 1
    groups: dict[tuple, list[int]] = {}
    for i in runnable:
        groups.setdefault(ADAPTERS[tasks[i].adapter].worker_key, []).append(i)
    results: queue.Queue = queue.Queue()
    hellos: list[dict] = []

    def work(indices: list[int]) -> None:
        names = list(dict.fromkeys(tasks[i].adapter for i in indices))
        try:
            run_worker(names, [tasks[i].task for i in indices],
                       lambda j, payload: results.put((indices[j], payload)), hellos.append)
        except Exception as exc:  # the driver side of a worker failed: record, never hang
            for i in indices:
                results.put((i, {"status": "error", "reason": f"worker driver failed: {exc}"}))

    slots = threading.Semaphore(jobs or max(1, min(len(groups), os.cpu_count() or 1)))

    def limited(indices: list[int]) -> None:
        with slots:
            work(indices)

    for indices in groups.values():
        threading.Thread(target=limited, args=(indices,), daemon=True).start()
    if suite.parity and (parity_scenarios or (parity_scenarios is None and cases is None)):
        # reference-only and quick (seconds); computed while the workers start up
        try:
            result = parity(list(suite.parity))
            writer.parity, writer.attribution = result.pairs, result.attribution
            env["parity"] = {s.name: {"settings": dict(s.settings), "presets": list(s.presets),
                                      "stream": s.stream.label(), "steps": s.steps, "seed": s.seed,
                                      "description": s.description, "skipped": result.skipped[s.name]}
                             for s in suite.parity}
        except Exception as exc:  # never lose the conformance rows over the parity tables
            env["parity_error"] = f"{type(exc).__name__}: {exc}"
        writer.flush()
    received: set[int] = set()
    try:
        while len(received) < len(runnable):
            i, payload = results.get()
            if i in received:
                continue
            received.add(i)
            p = tasks[i]
            if payload["status"] == "done":
                points = references.get(p)
                rows = _rows(p, payload["snapshots"], points, suite.name)
                status, reason, used = _verdict(rows)
                finish(i, _summary(p, suite.name, status, reason, rows, payload, used), rows,
                       _ulp_rows(p, payload["snapshots"], points, suite.name))
                continue
            references.release(p)
            if payload["status"] == "absent":
                finish(i, None, [])
            else:
                finish(i, _summary(p, suite.name, payload["status"], payload["reason"], payload=payload), [])
    finally:
        env["workers"] = {f"worker{n}": h for n, h in enumerate(hellos)}
        env["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        env["wall_seconds"] = round(time.perf_counter() - started, 3)
        writer.flush(env)
    div, summary = writer.frames()
    return RunResult(div, summary, env, writer.out, writer.ulp_frame(), writer.parity, writer.attribution)
