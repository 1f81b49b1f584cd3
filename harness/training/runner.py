"""Run a closed-loop comparison: plan it, train every framework in its own worker, build the tables.

`run_training` takes `TrainSpec`s (a suite's ``[[train]]`` tables, or the ``train`` command's
options), groups every run of one framework into one worker (the import is paid once), runs the
workers ``jobs`` at a time and returns the `harness.base.schema.TRAINING_TABLES`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import options, schema
from harness.base.host import missing
from harness.training import analysis, plan, trainers
from harness.training import workloads as registry
from harness.training.worker import train
from reference.errors import InputValueError

DTYPES = ("float32", "float64")
MAX_STEPS = 100_000


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """What to train: workloads x settings x dtypes, by every framework named, against ``base``."""

    name: str = "train"
    workloads: tuple[str, ...] = ("seed",)
    frameworks: tuple[str, ...] = ()  # empty: every default trainer
    settings: tuple[str, ...] = ("defaults", "same", "translated")
    dtypes: tuple[str, ...] = ("float32",)
    steps: int | None = None  # None: each workload's own
    base: str = "torch"
    values: dict[str, Any] = field(default_factory=dict)  # neutral knob overrides of `same` (--set)
    timeout: float = 600.0

    def check(self) -> TrainSpec:
        """Raise `InputValueError` (one line) for anything unknown; the names resolved."""
        for w in self.workloads:
            registry.get(w)
        names = list(self.frameworks) or trainers.defaults()
        for n in [*names, self.base]:
            trainers.get(n)
        for s in self.settings:
            if s not in plan.SETTINGS:
                raise InputValueError(f"unknown settings {s!r}; known: {', '.join(plan.SETTINGS)}")
        for d in self.dtypes:
            if d not in DTYPES:
                raise InputValueError(f"training runs in {' or '.join(DTYPES)}, not {d!r}")
        if self.steps is not None:
            options.integer(self.steps, "steps", 1, MAX_STEPS)
        for w in self.workloads:  # the neutral knobs of `same` and every framework's arguments, before anything runs
            for settings in self.settings:
                plan.make_plan(registry.get(w), settings, names if self.base in names else [self.base, *names],
                               self.base, self.values)
        if self.base not in names:
            names.insert(0, self.base)
        return TrainSpec(name=self.name, workloads=tuple(self.workloads), frameworks=tuple(names),
                         settings=tuple(self.settings), dtypes=tuple(self.dtypes), steps=self.steps, base=self.base,
                         values=dict(self.values), timeout=self.timeout)


@dataclass
class TrainResult:
    tables: dict[str, pd.DataFrame]
    versions: dict[str, dict[str, str | None]]  # worker ("torch+timm": trainers sharing one) -> package versions
    seconds: dict[str, float]  # worker -> its wall time

    @property
    def failed(self) -> list[str]:
        """What breaks the run's promise: a run that errored, initial weights that are not bit-identical."""
        runs = self.tables["training_runs"]
        out = [f"{r.workload}/{r.settings}/{r.dtype} {r.trainer} {r.run} ({r.optimizer}): {r.reason}"
               for r in runs.itertuples() if r.status == "error"]
        exact = runs["init_exact"] if "init_exact" in runs else pd.Series(dtype=object)
        bad = runs[(runs["status"] == "done") & (exact == False)]  # noqa: E712 - a column of True/False/None
        out += [f"{r.workload}/{r.settings}/{r.dtype} {r.trainer} {r.run}: initial weights differ from the master "
                "copy" for r in bad.itertuples()]
        return out


def run_training(specs: list[TrainSpec], jobs: int | None = None,
                 progress: Callable[[str, float], None] | None = None) -> TrainResult:
    """Train everything ``specs`` ask for; `InputValueError` for a bad spec before anything starts."""
    specs = [s.check() for s in specs]
    plans: list[tuple[plan.Plan, str, int]] = []
    for s in specs:
        for w in s.workloads:
            workload = registry.get(w)
            for settings in s.settings:
                p = plan.make_plan(workload, settings, list(s.frameworks), s.base, s.values)
                plans += [(p, d, s.steps or workload.steps) for d in s.dtypes]
    timeout = max((s.timeout for s in specs), default=600.0)
    # trainers that share an environment (torch and the torch clones; tf_keras and TF1) share a worker
    names: dict[tuple, list[str]] = {}
    queued: dict[tuple, list[dict]] = {}
    prefixes: dict[int, str] = {}
    unavailable: dict[str, str] = {}
    for i, (p, dtype, steps) in enumerate(plans):
        prefixes[i] = f"{i}#"
        for trainer in p.runs:
            reason = missing(*trainers.get(trainer).modules)
            if reason is not None:
                unavailable[trainer] = reason
                continue
            key = tuple(sorted(trainers.get(trainer).environment().items()))
            names.setdefault(key, [])
            if trainer not in names[key]:
                names[key].append(trainer)
            queued.setdefault(key, []).append(plan.job(p, trainer, dtype, steps, prefixes[i]))
    requests = {"+".join(names[key]): queued[key] for key in names}  # worker label ("tf_keras+tf1") -> its jobs
    results: dict[str, analysis.Result] = {}
    versions: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    lock = threading.Lock()

    def on_result(run_id: str, body: dict, arrays: list) -> None:
        status = str(body.get("status", "error"))
        ok = status == "done" and len(arrays) == 4
        res = (analysis.Result("done", "", *arrays) if ok else
               analysis.Result("error" if status == "done" else status, str(body.get("reason", "malformed result"))))
        with lock:
            results[run_id] = res

    def one(label: str) -> None:
        start = time.perf_counter()
        env = trainers.get(label.split("+")[0]).environment()
        try:
            train(env, {"jobs": requests[label]}, on_result,
                  lambda hello: versions.__setitem__(label, dict(hello.get("versions", {}))), timeout)
        except Exception as exc:  # the driver side failed: every run of this worker says so
            for j in requests[label]:
                for r in j["runs"]:
                    on_result(r["id"], {"status": "error", "reason": f"worker driver failed: {exc}"}, [])
        seconds[label] = time.perf_counter() - start
        if progress is not None:
            progress(label, seconds[label])

    # the workers with the most runs first: the comparison ends when its last worker does
    order = sorted(requests, key=lambda t: -sum(len(j["runs"]) for j in requests[t]))
    if order:
        with ThreadPoolExecutor(max(1, min(jobs or 2, len(order)))) as pool:
            list(pool.map(one, order))
    rows: dict[str, list[dict]] = {name: [] for name in schema.TRAINING_TABLES}
    for i, (p, dtype, steps) in enumerate(plans):
        for trainer, reason in unavailable.items():
            if trainer in p.runs:
                p.skipped[trainer] = f"skipped: {reason}"
        mine = {k[len(prefixes[i]):]: v for k, v in results.items() if k.startswith(prefixes[i])}
        p.runs = {t: r for t, r in p.runs.items() if t not in unavailable}
        run_rows, step_rows = analysis.run_rows(p, dtype, steps, mine)
        attribution = analysis.attribution_rows(p, dtype, mine)
        pairs, curves = analysis.pair_rows(p, dtype, steps, mine, attribution)
        rows["training_runs"] += run_rows
        rows["training"] += step_rows
        rows["training_pairs"] += pairs
        rows["training_divergence"] += curves
        rows["training_attribution"] += attribution
        rows["training_knobs"] += analysis.knob_rows(p, dtype, mine, attribution)
    columns = {name: schema.COLUMNS[name] for name in schema.TRAINING_TABLES}
    return TrainResult(analysis.frames(rows, columns), versions, seconds)




def plan_lines(specs: list[TrainSpec]) -> list[str]:
    """What `run_training` would run (``--dry-run``): each framework's arguments and its runs."""
    lines = []
    for s in (spec.check() for spec in specs):
        for w in s.workloads:
            workload = registry.get(w)
            for settings in s.settings:
                p = plan.make_plan(workload, settings, list(s.frameworks), s.base, s.values)
                runs = sum(len(r) for r in p.runs.values())
                lines.append(f"{s.name}: {w} ({s.steps or workload.steps} steps), {settings} settings, "
                             f"{'/'.join(s.dtypes)}: {runs} runs per dtype")
                for trainer, args in p.args.items():
                    why = missing(*trainers.get(trainer).modules)
                    lines.append(f"  {trainer}: {trainers.get(trainer).preset}({args})"
                                 + (f"  [skipped: {why}]" if why else ""))
                lines += [f"  {trainer}: {reason}" for trainer, reason in p.skipped.items()]
                lines += [f"  {p.base} vs {other}: {len(g)} differing knobs"
                          + (f" ({p.knob_notes[other]})" if other in p.knob_notes else "")
                          for other, g in p.knobs.items()]
    return lines


def train_to_folder(specs: list[TrainSpec], out: str | Path, jobs: int | None = None,
                    progress: Callable[[str, float], None] | None = None) -> tuple[TrainResult, Path]:
    """`run_training` into a run folder (kind ``training``): the tables and env.json, published atomically
    as incomplete first, so an interrupted run never passes for a finished one."""
    from harness.base import environment
    from harness.base.runfolder import RunFolder

    specs = [s.check() for s in specs]
    folder = RunFolder(out, "training", sum(len(s.workloads) * len(s.settings) * len(s.dtypes) for s in specs))
    started = time.perf_counter()
    env = environment.environment(training=[_described(s) for s in specs])
    empty = {name: pd.DataFrame(columns=schema.COLUMNS[name]) for name in schema.TRAINING_TABLES}
    complete = False
    try:
        environment.finish(env, [], started)
        folder.publish(empty, env, 0)
        result = run_training(specs, jobs, progress)
        env["training_versions"], env["training_seconds"] = result.versions, result.seconds
        complete = True
    finally:
        environment.finish(env, [], started)
        env["complete"] = complete
        folder.publish(result.tables if complete else empty, env, folder.planned if complete else 0, complete)
        folder.close()
    return result, folder.path


def _described(s: TrainSpec) -> dict[str, Any]:
    return {"name": s.name, "workloads": list(s.workloads), "frameworks": list(s.frameworks),
            "settings": list(s.settings), "dtypes": list(s.dtypes), "steps": s.steps, "base": s.base,
            "values": dict(s.values)}


__all__ = ["DTYPES", "TrainResult", "TrainSpec", "plan_lines", "run_training", "train_to_folder"]
