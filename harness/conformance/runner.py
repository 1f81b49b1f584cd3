"""The conformance run: a suite -> tasks -> isolated workers -> divergence tables on disk.

`run_suite` plans one task per case x adapter x device x dtype, runs each framework in its
own worker process (at most ``jobs`` at a time), computes the float64 reference once per
case, preset, arguments and dtype, and measures every recorded snapshot against it
(`harness.conformance.metrics`). Rows are published to the run folder in atomic generations every few
seconds and at the end (`harness.base.runfolder`), so an interrupted run keeps what it finished
and says it is incomplete (``run.json``: planned vs finished tasks).

Every finished unit (a task, the parity scenarios, the training) is also kept as a shard
(`harness.base.shards`), so the same command again resumes where a killed run stopped, with
tables identical to an uninterrupted run; ``shard=(k, n)`` runs one part of the plan for a CI
matrix (`harness.conformance.merge` joins the parts), ``executor="ray"`` runs the worker groups
on a Ray cluster and ``environments`` adds named package sets (`harness.base.envs`) side by side.

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

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import environment, envs, options, schema, shards
from harness.base.shards import ShardStore
from harness.conformance.cases import Suite
from harness.conformance.driver import Driver
from harness.conformance.executor import EXECUTORS, ray_available
from harness.conformance.plan import Planned, RunError, plan
from harness.conformance.suite import load_suite
from harness.conformance.units import in_shard, parse_shard, plan_units, shard_label, with_environments
from harness.conformance.writer import RunWriter
from harness.process import spawn

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
    derived: dict[str, pd.DataFrame] = field(default_factory=dict)  # tables computed at the end (the timeline)

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
            dtypes: list[str] | None = None, cases: list[str] | None = None, jobs: int | None = None,
            environments: list[envs.Environment] | None = None, own_environment: bool = True
            ) -> tuple[Suite, list[Planned]]:
    """Check the options (one line on bad input), load the suite and plan its tasks (what ``--dry-run``
    prints): every task in the harness's own environment, then in each named one that runs its adapter."""
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)
    options.integer(jobs, "--jobs", 1, 256)
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    named = _environments(suite, environments)
    return suite, with_environments(plan(suite, adapters, devices, dtypes, cases), named, own_environment)


def _environments(suite: Suite, extra: list[envs.Environment] | None) -> list[envs.Environment]:
    """The suite's ``[environments.*]`` and ``--env``'s, one per name."""
    out: dict[str, envs.Environment] = {e.name: e for e in suite.environments}
    for env in extra or []:
        if env.name in out and out[env.name] != env:
            raise RunError(f"--env {env.name}: the suite already defines an environment of that name")
        out[env.name] = env
    return list(out.values())


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
    environments: list[envs.Environment] | None = None,
    shard: str | tuple[int, int] | None = None,
    rerun: str | None = None,
    executor: str = "local",
    address: str | None = None,
    own_environment: bool = True,
    derive: Callable[[dict[str, pd.DataFrame], dict], dict[str, pd.DataFrame]] | None = None,
) -> RunResult:
    """Run ``suite`` (a `Suite`, a built-in name or a path) and return the DataFrames.

    ``out=None`` keeps everything in memory. ``progress(done, total, summary_row)`` is
    called after each unit. The suite's ``[[parity]]`` scenarios (`harness.compare.parity`) are
    computed too, unless ``cases`` selects a subset (then only with ``parity_scenarios=True``)
    or ``parity_scenarios=False``; so are its ``[[train]]`` tables (`harness.training`), unless ``cases`` or
    ``adapters`` select a subset or ``training=False``.

    Every finished unit leaves a shard in ``out/shards`` (`harness.conformance.units`); running into the
    same folder again reuses the valid ones (same task, environment and machine) unless ``rerun`` is
    ``all`` (or ``failed``: keep only the passing ones). ``shard=(k, n)`` runs the k-th of n parts;
    ``executor="ray"`` runs the worker groups as Ray tasks (`harness.conformance.executor`).
    """
    suite, tasks = prepare(suite, adapters=adapters, devices=devices, dtypes=dtypes, cases=cases, jobs=jobs,
                           environments=environments, own_environment=own_environment)
    part = parse_shard(shard) if not isinstance(shard, tuple) else parse_shard("/".join(map(str, shard)))
    if rerun not in (None, "failed", "all"):
        raise RunError(f"--rerun {rerun!r}: give failed or all")
    if executor not in EXECUTORS:
        raise RunError(f"--executor {executor!r}: give one of {', '.join(EXECUTORS)}")
    if executor == "ray" and ray_available():
        raise RunError(ray_available())
    do_parity = bool(suite.parity) and bool(parity_scenarios or (parity_scenarios is None and cases is None))
    do_training = bool(training and suite.train and (parity_scenarios or (parity_scenarios is None and cases is None
                                                                          and adapters is None)))
    if not tasks and not do_training:
        raise RunError(f"no task in suite {suite.name!r}: it only trains ([[train]]), and this run skips that")
    named = {e.name: e for e in _environments(suite, environments)}
    units = plan_units(suite, tasks, list(named.values()), parity=do_parity, training=do_training)
    mine = [u for u in units if in_shard(u, part)]
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)  # as recorded in env.json
    for name in dict.fromkeys(u.environment for u in mine if u.environment != envs.DEFAULT):
        envs.ensure(named[name], lambda line: print(line, file=sys.stderr, flush=True))
    writer = RunWriter(Path(out) if out is not None else None, len(mine))
    store = ShardStore(writer.out) if writer.out is not None else None
    env = environment.environment(
        suite={"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
        seeds={c.name: c.seed for c in suite.cases}, workers={},
        filters={"adapters": adapters, "devices": devices, "dtypes": dtypes, "cases": cases},
        plan={"units": [u.hash for u in units], "shard": shard_label(part),
              "selected": len(mine), "code": shards.code_digest(), "executor": executor, "rerun": rerun},
        environments={n: {"packages": list(e.packages), "installed": envs.versions(e)} for n, e in named.items()})
    started = time.perf_counter()
    hellos: list[dict] = []
    environment.finish(env, hellos, started)
    writer.publish(env)
    state = Driver(suite=suite, writer=writer, store=store, env=env, hellos=hellos, started=started,
                 progress=progress, named=named)
    complete = False
    try:
        todo = state.resume(mine, rerun, units)
        state.execute(todo, jobs, executor, address)
        if derive is not None:  # tables computed from the finished ones (the timeline's)
            writer.derived = derive(writer.tables(), env)
        complete = True
    except BaseException:
        spawn.kill_all()  # interrupted (Ctrl-C, SIGTERM): no worker outlives the driver
        raise
    finally:
        environment.finish(env, state.unique_hellos(), started)
        env["complete"] = complete
        env["resumed"] = state.resumed
        writer.publish(env, complete=complete)
        writer.close()
    return _result(state, devices)


def _result(run: Driver, devices: list[str] | None) -> RunResult:
    tables = run.writer.tables()
    empty = {n: pd.DataFrame(columns=schema.COLUMNS[n]) for n in ("parity", "attribution", "sweep",
                                                                   "interactions")}
    tables = {**empty, **tables}
    training = {n: tables[n] for n in schema.TRAINING_TABLES if n in tables}
    failed = [line for s in run.writer.shards.values() for line in s.env.get("training_failed", [])]
    tasks = [u for u in run.units.values() if u.planned is not None]
    planned = [u.planned for u in tasks]
    payloads = {i: (run.writer.shards[u.order].tables.get("summary") or [{}])[0] for i, u in enumerate(tasks)
                if u.order in run.writer.shards}  # each task's status and reason, as its shard has them
    return RunResult(tables["divergence"], tables["summary"], run.env, run.writer.out,
                     tables["ulp_histogram"], tables["parity"], tables["attribution"], tables["sweep"],
                     tables["interactions"], _unavailable(planned, payloads, devices), training, failed,
                     dict(run.writer.derived))


__all__ = ["DIVERGENCE_COLUMNS", "STATUSES", "SUMMARY_COLUMNS", "TABLES", "RunError", "RunResult", "plan", "prepare",
           "run_suite"]
