"""One run's driver: resumes what earlier attempts finished, runs the rest, turns each result into a shard.

`Driver.resume` takes every valid shard of the unit plan from the run folder (same task hash, same
environment and machine; `harness.conformance.units`); `Driver.execute` runs the remaining units:
unsupported tasks become their row at once, the tasks go to their worker groups
(`harness.conformance.executor`) and are measured here against the float64 reference as their
payloads arrive (a reference trajectory is computed once per case, semantics and dtype and
dropped after its last task), the parity scenarios run in the driver while the workers start, the
training last. Each result is written as its shard before its rows join the tables.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from harness.adapters import ADAPTERS
from harness.base import environment, envs, shards
from harness.base.shards import Shard, ShardStore
from harness.compare.parity import parity
from harness.conformance.cases import Suite
from harness.conformance.executor import Group, run_groups
from harness.conformance.knob import explaining_knob
from harness.conformance.metrics import ReferencePoint, reference_points
from harness.conformance.plan import Planned
from harness.conformance.units import Identity, Unit, identity
from harness.conformance.verdict import divergence_rows, summary_row, ulp_rows, verdict
from harness.conformance.writer import RunWriter
from harness.training.runner import run_training


@dataclass
class References:
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


def _measure(p: Planned, payload: dict, references: References, suite: str) -> tuple[dict, list, list]:
    points = references.get(p)
    rows = divergence_rows(p, payload["snapshots"], points, suite)
    status, reason, used = verdict(rows, [points[s.step] for s in payload["snapshots"]])
    if status == "fail":
        knob = explaining_knob(p, payload["snapshots"])
        if knob is not None:
            reason += f"; {knob} reproduces this run within tolerance"
    return (summary_row(p, suite, status, reason, rows, payload, used), rows,
            ulp_rows(p, payload["snapshots"], points, suite))


@dataclass(kw_only=True)
class Driver:
    """One run's driver state: the shards so far, the references, env.json's growing parts."""

    suite: Suite
    writer: RunWriter
    store: ShardStore | None
    env: dict
    hellos: list[dict]
    started: float
    progress: Callable[[int, int, dict], None] | None
    named: dict[str, envs.Environment]
    resumed: int = 0
    units: dict[int, Unit] = field(default_factory=dict)  # this run's units by plan place
    identities: dict[str, Identity] = field(default_factory=dict)  # per environment: the same all run long
    references: References = field(default_factory=lambda: References())
    group_hellos: dict[int, dict] = field(default_factory=dict)

    def resume(self, mine: list[Unit], rerun: str | None, units: list[Unit]) -> list[Unit]:
        """Take the valid shards of earlier attempts; the units still to run."""
        self.units = {u.order: u for u in mine}
        if self.store is None:
            return mine
        self.store.prune({u.hash for u in units})
        todo = []
        for u in mine:
            old = None if rerun == "all" else self.store.read(u.hash)
            valid = old is not None and old.order == u.order and _where(old) == self.identity(u.environment)
            if valid and (rerun != "failed" or old.status in shards.KEPT_ON_RERUN_FAILED):
                self.resumed += 1
                self.finish(u, old, store=False)
            else:
                todo.append(u)
        return todo

    def finish(self, unit: Unit, shard: Shard, store: bool = True) -> None:
        if store and self.store is not None:
            self.store.write(shard)
        shard = shard.roundtrip()  # a fresh result reads exactly as a resumed one
        self.writer.add(shard)
        self.hellos.extend(shard.hellos)
        self.env.update(shard.env)
        if self.writer.due():
            environment.finish(self.env, self.unique_hellos(), self.started)
            self.writer.publish(self.env)
        if self.progress is not None:
            self.progress(self.writer.finished, len(self.units), (shard.tables.get("summary") or [{}])[0])

    def shard(self, unit: Unit, status: str, tables: dict[str, list[dict]], hellos: list[dict] = (),
              seconds: float = float("nan"), env: dict | None = None) -> Shard:
        where = self.identity(unit.environment)
        return Shard(hash=unit.hash, spec=unit.spec, order=unit.order, status=status, tables=tables,
                     environment=where.environment, machine=where.machine, hellos=list(hellos), seconds=seconds,
                     env=env or {})

    def identity(self, environment: str) -> Identity:
        if environment not in self.identities:  # the environments are created before the run and stay as they are
            self.identities[environment] = identity(environment, self.named)
        return self.identities[environment]

    def unique_hellos(self) -> list[dict]:
        seen = {}
        for h in self.hellos:
            seen.setdefault(shards.canonical(h), h)
        return list(seen.values())

    def execute(self, todo: list[Unit], jobs: int | None, executor: str, address: str | None) -> None:
        tasks = [u for u in todo if u.kind == "conformance"]
        for u in tasks:
            if u.planned.task is None:
                self.finish(u, self.shard(u, "unsupported", {"summary": [
                    summary_row(u.planned, self.suite.name, "unsupported", u.planned.reason)]}))
            else:
                self.references.remaining[u.planned.key] = self.references.remaining.get(u.planned.key, 0) + 1
        groups: dict[tuple, Group] = {}
        for u in tasks:
            p = u.planned
            if p.task is None:
                continue
            key = (ADAPTERS[p.adapter].worker_key, p.environment)  # a Ray cluster with GPUs splits off the GPU tasks
            group = groups.setdefault(key, Group(number=len(groups), orders=[], adapters=[], tasks=[],
                                                 environment=self.named.get(p.environment)))
            group.orders.append(u.order)
            group.tasks.append(p.task)
            if p.adapter not in group.adapters:
                group.adapters.append(p.adapter)
        arrived: queue.Queue = queue.Queue()
        workers = jobs or max(1, min(len(groups), os.cpu_count() or 1))

        def on_hello(number: int, hello: dict) -> None:
            self.group_hellos[number] = hello

        number = {order: g.number for g in groups.values() for order in g.orders}

        def measure(order: int, payload: dict) -> None:
            hello = self.group_hellos.get(number[order])
            self.finish(self.units[order], self._measured(self.units[order], payload, [hello] if hello else []))

        if executor == "ray":  # Ray is driven from the main thread only: elsewhere its waits never return
            for u in todo:
                if u.kind == "parity":
                    self.finish(u, _parity(self, u))
            if groups:
                run_groups(list(groups.values()), measure, on_hello, jobs=workers, executor=executor, address=address)
        else:  # the workers start in the background; the parity scenarios run meanwhile, then the measuring
            runner = threading.Thread(target=self._groups, daemon=True, args=(
                list(groups.values()), lambda order, payload: arrived.put((order, payload)), on_hello, workers,
                arrived))
            runner.start()
            for u in todo:
                if u.kind == "parity":
                    self.finish(u, _parity(self, u))
            waiting = set(number)
            while waiting:
                item = arrived.get()
                if isinstance(item, BaseException):
                    raise item
                order, payload = item
                if order in waiting:
                    waiting.discard(order)
                    measure(order, payload)
        self.env["groups"] = [g.record() for g in groups.values()]
        for u in todo:
            if u.kind == "training":
                self.finish(u, _training(self, u, jobs))

    @staticmethod
    def _groups(groups, deliver, on_hello, workers, arrived) -> None:
        try:
            run_groups(groups, deliver, on_hello, jobs=workers)
        except BaseException as exc:  # a bug in the executor: the driver loop raises it
            arrived.put(exc)

    def _measured(self, unit: Unit, payload: dict, hellos: list[dict]) -> Shard:
        p, name = unit.planned, self.suite.name
        if payload["status"] == "done":
            try:
                summary, rows, ulp = _measure(p, payload, self.references, name)
                return self.shard(unit, summary["status"], {"summary": [summary], "divergence": rows,
                                                            "ulp_histogram": ulp}, hellos, payload.get("seconds"))
            except Exception as exc:  # a harness bug on one task: its row says so, the traceback is shown
                traceback.print_exc(file=sys.stderr)
                status, reason = "error", f"harness error while measuring: {type(exc).__name__}: {exc}"
        else:
            self.references.release(p)
            status, reason = payload["status"], payload.get("reason", "")
        if status == "absent":  # a task the adapter left out: no row, but the unit is finished
            return self.shard(unit, "skipped", {}, hellos)
        return self.shard(unit, status, {"summary": [summary_row(p, name, status, reason, payload=payload)]}, hellos,
                          payload.get("seconds", float("nan")))


def _where(shard: Shard) -> Identity:
    return Identity(shard.environment, shard.machine)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


def _training(run: Driver, unit: Unit, jobs: int | None) -> Shard:
    """The suite's closed-loop training (`harness.training`), after the conformance tasks."""
    suite = run.suite
    result = run_training(list(suite.train), jobs)
    env = {"training": {s.name: {"workloads": list(s.workloads), "frameworks": list(s.frameworks),
                                 "settings": list(s.settings), "dtypes": list(s.dtypes), "base": s.base}
                        for s in suite.train},
           "training_versions": result.versions, "training_seconds": result.seconds,
           "training_failed": result.failed}
    return run.shard(unit, "fail" if result.failed else "done",
                     {name: _records(frame) for name, frame in result.tables.items()},
                     seconds=sum(result.seconds.values()), env=env)


def _parity(run: Driver, unit: Unit) -> Shard:
    """The suite's parity scenarios (reference only, seconds), computed while the workers start up."""
    suite = run.suite
    try:
        result = parity(list(suite.parity))
    except Exception as exc:  # never lose the conformance rows over the parity tables
        traceback.print_exc(file=sys.stderr)
        return run.shard(unit, "error", {}, env={"parity_error": f"{type(exc).__name__}: {exc}"})
    tables = {"parity": result.pairs, "sweep": result.sweep, "attribution": result.attribution,
              "interactions": result.interactions}
    env = {"parity": {s.name: {"settings": dict(s.settings), "presets": list(s.presets),
                               "stream": s.stream.label(), "steps": s.steps, "seed": s.seed,
                               "scales": list(s.scale_list()), "description": s.description,
                               "skipped": result.skipped[s.name]} for s in suite.parity}}
    return run.shard(unit, "done", {name: _records(frame) for name, frame in tables.items()}, env=env)


__all__ = ["Driver", "References"]
