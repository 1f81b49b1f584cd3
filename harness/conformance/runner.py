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

import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.adapters import ADAPTERS
from harness.base import environment, options, schema
from harness.compare.parity import parity
from harness.conformance.cases import Suite
from harness.conformance.knob import explaining_knob
from harness.conformance.metrics import ReferencePoint, reference_points
from harness.conformance.plan import Planned, RunError, plan
from harness.conformance.suite import load_suite
from harness.conformance.verdict import divergence_rows, summary_row, ulp_rows, verdict
from harness.conformance.worker import run_worker
from harness.conformance.writer import RunWriter
from harness.process import spawn
from harness.training.runner import TrainResult, run_training

STATUSES = schema.STATUSES
SUMMARY_COLUMNS = schema.SUMMARY
DIVERGENCE_COLUMNS = schema.DIVERGENCE
ULP_COLUMNS = schema.ULP_HISTOGRAM
TABLES = schema.CONFORMANCE_TABLES


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
    training: dict[str, pd.DataFrame] = field(default_factory=dict)  # the suite's [[train]] tables
    training_failed: list[str] = field(default_factory=list)  # runs that errored or did not start bit-identical

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
        return 1 if (~self.summary["status"].isin(schema.PASSING)).any() or self.training_failed else 0

    def counts(self) -> dict[str, int]:
        return {s: int((self.summary["status"] == s).sum()) for s in STATUSES}


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
    rows = divergence_rows(p, payload["snapshots"], points, suite)
    status, reason, used = verdict(rows, [points[s.step] for s in payload["snapshots"]])
    if status == "fail":
        knob = explaining_knob(p, payload["snapshots"])
        if knob is not None:
            reason += f"; {knob} reproduces this run within tolerance"
    return (summary_row(p, suite, status, reason, rows, payload, used), rows,
            ulp_rows(p, payload["snapshots"], points, suite))


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


def prepare(suite: Suite | str | Path, *, adapters: list[str] | None = None, devices: list[str] | None = None,
            dtypes: list[str] | None = None, cases: list[str] | None = None, jobs: int | None = None
            ) -> tuple[Suite, list[Planned]]:
    """Check the options (one line on bad input), load the suite and plan its tasks (what ``--dry-run``
    prints)."""
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)
    options.integer(jobs, "--jobs", 1, 256)
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    return suite, plan(suite, adapters, devices, dtypes, cases)


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
    training: bool = True,
) -> RunResult:
    """Run ``suite`` (a `Suite`, a built-in name or a path) and return the DataFrames.

    ``out=None`` keeps everything in memory. ``progress(done, total, summary_row)`` is
    called after each task. The suite's ``[[parity]]`` scenarios (`harness.compare.parity`) are
    computed too, unless ``cases`` selects a subset (then only with ``parity_scenarios=True``)
    or ``parity_scenarios=False``; so are its ``[[train]]`` tables (`harness.training`), unless ``cases`` or
    ``adapters`` select a subset or ``training=False``.
    """
    suite, tasks = prepare(suite, adapters=adapters, devices=devices, dtypes=dtypes, cases=cases, jobs=jobs)
    if not tasks and not (training and suite.train and cases is None and adapters is None):
        raise RunError(f"no task in suite {suite.name!r}: it only trains ([[train]]), and this run skips that")
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)  # as recorded in env.json
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
    trained = None

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
                finish(i, summary_row(p, suite.name, "unsupported", p.reason))
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
                    finish(i, summary_row(p, suite.name, "error", f"harness error while measuring: "
                                       f"{type(exc).__name__}: {exc}", payload=payload))
            else:
                references.release(p)
                finish(i, None if payload["status"] == "absent" else
                       summary_row(p, suite.name, payload["status"], payload["reason"], payload=payload))
        if training and suite.train and (parity_scenarios or (parity_scenarios is None and cases is None
                                                           and adapters is None)):
            trained = _training(suite, writer, env, jobs)
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
                     _unavailable(tasks, payloads, devices), trained.tables if trained else {},
                     trained.failed if trained else [])


def _training(suite: Suite, writer: RunWriter, env: dict, jobs: int | None) -> TrainResult:
    """The suite's closed-loop training (`harness.training`), after the conformance tasks."""
    result = run_training(list(suite.train), jobs)
    writer.extra = {**writer.extra, **result.tables}
    env["training"] = {s.name: {"workloads": list(s.workloads), "frameworks": list(s.frameworks),
                                "settings": list(s.settings), "dtypes": list(s.dtypes), "base": s.base}
                       for s in suite.train}
    env["training_versions"], env["training_seconds"] = result.versions, result.seconds
    return result


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


__all__ = ["DIVERGENCE_COLUMNS", "STATUSES", "SUMMARY_COLUMNS", "TABLES", "RunError", "RunResult", "plan", "prepare",
           "run_suite"]
