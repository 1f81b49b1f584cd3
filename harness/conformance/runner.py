"""The conformance run: a suite -> tasks -> isolated workers -> divergence tables on disk.

`run_suite` plans one task per case x adapter x device x dtype, runs each framework in its
own worker process (at most ``jobs`` at a time), computes the float64 reference once per
case, preset, arguments and dtype, and measures every recorded snapshot against it
(`harness.conformance.metrics`). Rows are published to the run folder in atomic generations every few
seconds and at the end (`harness.base.runfolder`), so an interrupted run keeps what it finished
and says it is incomplete (``run.json``: planned vs finished tasks).

The ``warnings`` column lists what the framework silently rewrites or ignores in the
arguments given (``epsilon=0`` becoming 1e-7 in tf_keras legacy, ``lr=`` ignored by
tf_keras, a float32 clip factor on Keras' torch backend, ...), separated by `` | ``.

Status of a summary row (`harness.base.schema.STATUSES`): ``ok`` (within tolerance at every
recorded step), ``fail`` (the reason names the first quantity and step out of tolerance),
``degenerate`` (nothing was compared: the reference's parameters never moved to a finite
new value), ``unsupported`` (the framework cannot express the requested semantics or
dtype), ``skipped`` (framework or device not present) or ``error`` (the framework raised,
crashed, timed out or sent a malformed or incomplete result; the reason says which).
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.adapters import ADAPTERS, BUILTIN, STATE_KINDS, Task, resolve
from harness.base import environment, options, schema
from harness.base.limits import check_case
from harness.base.runfolder import RunFolder
from harness.compare.parity import parity
from harness.conformance.metrics import (
    ULP_LABELS,
    ReferencePoint,
    divergence,
    record_steps,
    reference_points,
    ulp_histogram,
)
from harness.conformance.suite import Case, Suite, load_suite
from harness.conformance.worker import run_worker
from harness.process import spawn
from reference import RMSpropSpec
from reference.budget import run_tolerance, state_tolerance
from reference.errors import InputValueError
from reference.translate import Unsupported

STATUSES = schema.STATUSES
WARNING_SEPARATOR = " | "
SUMMARY_COLUMNS = schema.SUMMARY
DIVERGENCE_COLUMNS = schema.DIVERGENCE
ULP_COLUMNS = schema.ULP_HISTOGRAM
TABLES = schema.CONFORMANCE_TABLES

def _publish_every() -> float:
    """Seconds between generations written while a run goes on (``RMSPROP_HARNESS_PUBLISH_EVERY``: a test and
    debugging knob; 0 writes one after every task)."""
    try:
        return max(0.0, float(os.environ.get("RMSPROP_HARNESS_PUBLISH_EVERY", "2")))
    except ValueError:
        return 2.0


PUBLISH_EVERY = _publish_every()


class RunError(InputValueError):
    """Bad run options (no task selected, unknown adapter, a device nothing could run on); one line."""


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
    parity: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=schema.PARITY))
    attribution: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=schema.ATTRIBUTION))
    sweep: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=schema.SWEEP))
    interactions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=schema.INTERACTIONS))
    unavailable: list[str] = field(default_factory=list)  # explicitly asked devices that nothing ran on

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by its file stem (`harness.base.schema.CONFORMANCE_TABLES`)."""
        return {"summary": self.summary, "divergence": self.divergence, "ulp_histogram": self.ulp_histogram,
                "parity": self.parity, "sweep": self.sweep, "attribution": self.attribution,
                "interactions": self.interactions}

    @property
    def exit_code(self) -> int:
        """2 when an explicitly asked device ran nothing; 1 when any row is not ok, unsupported or skipped."""
        if self.unavailable:
            return 2
        return 1 if (~self.summary["status"].isin(schema.PASSING)).any() else 0

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
    """Every task of ``suite``; ``adapters`` filters (names or families), ``devices`` (``cpu``, ``gpu``
    or ``auto``) and ``dtypes`` replace the cases' own, ``cases`` filters by name (shell patterns)."""
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
        steps = record_steps(case.steps, case.records)
        check_case(case, len(steps))
        params0, lrs = case.params0(), case.lrs()
        for adapter in (*case.adapters, *(u for u in users if u not in case.adapters and _joins(case, u))):
            if wanted is not None and adapter not in wanted:
                continue
            if devices and devices != ["auto"]:
                device_list = [(d, False) for d in devices]
            elif devices == ["auto"] or case.devices == "auto":  # cpu where it runs; a gpu only if visible
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
def _verdict(rows: list[dict], points: list[ReferencePoint]) -> tuple[str, str, float]:
    """(status, reason, tolerance_used) from the divergence rows of one task and its reference points."""
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
    last = points[-1] if points else None
    blown = last is not None and not any(np.isfinite(p).any() for p in last.params.values())
    if not any(p.moved for p in points) or blown:
        finite = any(np.isfinite(p).any() for point in points for p in point.params.values())
        why = ("no parameter ever moves (every update rounds to nothing)" if finite and not blown else
               f"every parameter is non-finite on both sides{' by the end' if finite else ''}")
        return "degenerate", f"nothing was compared: {why}; both sides agree trivially", used
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
        "expected": len(planned.task.record_steps) if planned.task else 0,
        "recorded": len(rows) if rows else 0,
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
        out = {"summary": self._ordered(self.summary, SUMMARY_COLUMNS),
               "divergence": self._ordered(self.divergence, DIVERGENCE_COLUMNS, "step"),
               "ulp_histogram": self._ordered(self.ulp, ULP_COLUMNS, "bin")}
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


def _measure(p: Planned, payload: dict, references: _References, suite: str) -> tuple[dict, list, list]:
    points = references.get(p)
    rows = _rows(p, payload["snapshots"], points, suite)
    status, reason, used = _verdict(rows, [points[s.step] for s in payload["snapshots"]])
    return (_summary(p, suite, status, reason, rows, payload, used), rows,
            _ulp_rows(p, payload["snapshots"], points, suite))


def _unavailable(tasks: list[Planned], results: dict[int, dict], devices: list[str] | None) -> list[str]:
    """Explicitly asked devices on which no task could run (``--device gpu`` on a machine without one)."""
    asked: dict[str, list[int]] = {}
    for i, p in enumerate(tasks):
        explicit = p.task is not None and not p.task.optional_device and (devices != ["auto"])
        if explicit and (devices or p.case.devices != "auto"):
            asked.setdefault(p.device, []).append(i)
    out = []
    for device, indices in asked.items():
        payloads = [results.get(i, {}) for i in indices]
        if payloads and all(q.get("status") == "skipped" and "visible" in str(q.get("reason", "")) for q in payloads):
            adapters = sorted({tasks[i].adapter for i in indices})
            out.append(f"--device {device}: no {device} visible to {', '.join(adapters)}; nothing was tested on it "
                       "(--device auto runs where a device is visible)")
    return out


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
    called after each task. The suite's ``[[parity]]`` scenarios (`harness.compare.parity`) are
    computed too, unless ``cases`` selects a subset (then only with ``parity_scenarios=True``)
    or ``parity_scenarios=False``.
    """
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)
    options.integer(jobs, "--jobs", 1, 256)
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    tasks = plan(suite, adapters, devices, dtypes, cases)
    writer = RunWriter(Path(out) if out is not None else None, len(tasks))
    env = environment.environment(
        suite={"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
        seeds={c.name: c.seed for c in suite.cases}, workers={},
        filters={"adapters": adapters, "devices": devices, "dtypes": dtypes, "cases": cases})
    started = time.perf_counter()
    hellos: list[dict] = []
    environment.finish(env, hellos, started)
    writer.publish(env)
    references = _References()
    payloads: dict[int, dict] = {}
    complete = False

    def finish(i: int, summary: dict | None, rows: list[dict] = (), ulp: list[dict] = ()) -> None:
        writer.add(i, summary, rows, ulp)
        if writer.due():
            environment.finish(env, hellos, started)
            writer.publish(env)
        if progress is not None:
            progress(writer.finished, len(tasks), summary or {})

    try:
        runnable: list[int] = []
        for i, p in enumerate(tasks):
            if p.task is None:
                finish(i, _summary(p, suite.name, "unsupported", p.reason))
            else:
                runnable.append(i)
                references.remaining[p.key] = references.remaining.get(p.key, 0) + 1
        groups: dict[tuple, list[int]] = {}
        for i in runnable:
            groups.setdefault(ADAPTERS[tasks[i].adapter].worker_key, []).append(i)
        results: queue.Queue = queue.Queue()

        def work(indices: list[int]) -> None:
            names = list(dict.fromkeys(tasks[i].adapter for i in indices))
            try:
                run_worker(names, [tasks[i].task for i in indices],
                           lambda j, payload: results.put((indices[j], payload)), hellos.append)
            except Exception as exc:  # the driver side of a worker failed: record, never hang
                for i in indices:
                    results.put((i, {"status": "error", "reason": f"worker driver failed: {exc}"}))

        # the largest groups first (longest processing time first): the run ends when its last worker does
        backlog: queue.Queue = queue.Queue()
        for indices in sorted(groups.values(), key=len, reverse=True):
            backlog.put(indices)

        def runner() -> None:
            while True:
                try:
                    indices = backlog.get_nowait()
                except queue.Empty:
                    return
                work(indices)

        for _ in range(jobs or max(1, min(len(groups), os.cpu_count() or 1))):
            threading.Thread(target=runner, daemon=True).start()
        if suite.parity and (parity_scenarios or (parity_scenarios is None and cases is None)):
            _parity(suite, writer, env)
        while len(payloads) < len(runnable):
            i, payload = results.get()
            if i in payloads:
                continue
            payloads[i] = payload
            p = tasks[i]
            if payload["status"] == "done":
                try:
                    finish(i, *_measure(p, payload, references, suite.name))
                except Exception as exc:  # a harness bug on one task: its row says so, the traceback is shown
                    traceback.print_exc(file=sys.stderr)
                    finish(i, _summary(p, suite.name, "error", f"harness error while measuring: "
                                       f"{type(exc).__name__}: {exc}", payload=payload))
            else:
                references.release(p)
                finish(i, None if payload["status"] == "absent" else
                       _summary(p, suite.name, payload["status"], payload["reason"], payload=payload))
        complete = True
    except BaseException:
        spawn.kill_all()  # interrupted (Ctrl-C, SIGTERM): no worker outlives the driver
        raise
    finally:
        environment.finish(env, hellos, started)
        env["complete"] = complete
        writer.publish(env, complete=complete)
        writer.close()
    tables = writer.tables()
    empty = {name: pd.DataFrame(columns=schema.COLUMNS[name]) for name in ("parity", "attribution", "sweep",
                                                                            "interactions")}
    tables = {**empty, **tables}
    return RunResult(tables["divergence"], tables["summary"], env, writer.out, tables["ulp_histogram"],
                     tables["parity"], tables["attribution"], tables["sweep"], tables["interactions"],
                     _unavailable(tasks, payloads, devices))


def _parity(suite: Suite, writer: RunWriter, env: dict) -> None:
    """The suite's parity scenarios (reference only, seconds), computed while the workers start up."""
    try:
        result = parity(list(suite.parity))
        writer.extra = {"parity": result.pairs, "sweep": result.sweep, "attribution": result.attribution,
                        "interactions": result.interactions}
        env["parity"] = {s.name: {"settings": dict(s.settings), "presets": list(s.presets),
                                  "stream": s.stream.label(), "steps": s.steps, "seed": s.seed,
                                  "scales": list(s.scale_list()), "description": s.description,
                                  "skipped": result.skipped[s.name]} for s in suite.parity}
    except Exception as exc:  # never lose the conformance rows over the parity tables
        traceback.print_exc(file=sys.stderr)
        env["parity_error"] = f"{type(exc).__name__}: {exc}"
