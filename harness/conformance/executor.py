"""Executors: where a run's worker groups run. One process per framework environment either way.

A group is the tasks that share a worker process: one adapter module and its process
environment, one named package set, CPU or GPU. Its tasks go to `run_worker`, which starts
the framework's worker process and streams back one payload per task.

* ``local`` (the default): ``jobs`` groups at a time in driver threads, the largest first
  (longest processing time first: the run ends when its last worker does).
* ``ray``: each group is a Ray task on an existing cluster (``address``) or on a local instance
  with ``jobs`` worker processes. The Ray task starts the same worker process on its node (a
  named environment is created there, in that node's cache, `harness.base.envs`), so the
  payloads, and the tables measured from them in the driver, are bit-identical to the local
  executor's. A GPU group asks Ray for ``num_gpus=1``. On a remote cluster the harness's code
  travels as ``runtime_env={"py_modules": ...}``; a local instance imports the installed one.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.adapters import ADAPTERS, AdapterInfo, Task
from harness.base import envs
from harness.conformance.inprocess import is_live, run_in_process
from harness.conformance.plan import RunError
from harness.conformance.worker import run_worker

EXECUTORS = ("local", "ray")

Deliver = Callable[[int, dict], None]  # (unit order, payload)
Hello = Callable[[int, dict], None]  # (group number, hello)


@dataclass(kw_only=True)
class Group:
    """Tasks that share one worker process."""

    number: int
    orders: list[int]  # the units' places in the plan
    adapters: list[str]
    tasks: list[Task]
    environment: envs.Environment | None = None  # None: the harness's own
    gpu: bool = False
    seconds: float = 0.0  # the group's wall time in its process (worker start-up included)
    node: str = ""  # where it ran (a Ray node's hostname and pid; the driver's for the local executor)
    parent: Group | None = None  # the group this is the CPU or GPU part of (a Ray cluster with GPUs)

    def record(self) -> dict[str, Any]:
        """What env.json keeps of the group (the cost model behind a cluster's expected scaling)."""
        return {"adapters": self.adapters, "environment": self.environment.name if self.environment else "default",
                "devices": sorted({t.device for t in self.tasks}), "tasks": len(self.tasks),
                "seconds": round(self.seconds, 3), "node": self.node}


def run_groups(groups: list[Group], deliver: Deliver, on_hello: Hello, *, jobs: int, executor: str = "local",
               address: str | None = None) -> None:
    """Run every group; ``deliver`` gets exactly one payload per task, from any thread."""
    if executor == "ray":
        _run_ray(groups, deliver, on_hello, jobs, address)
        return
    ordered = sorted(groups, key=lambda g: len(g.tasks), reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(_run_local, g, deliver, on_hello) for g in ordered]:
            future.result()


def _python(environment: envs.Environment | None) -> str:
    return sys.executable if environment is None else str(envs.ensure(environment))


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _run_local(group: Group, deliver: Deliver, on_hello: Hello) -> None:
    started = time.perf_counter()
    group.node = _where()
    def result(j: int, payload: dict) -> None:
        deliver(group.orders[j], payload)

    def hello(body: dict) -> None:
        on_hello(group.number, body)

    try:
        if all(is_live(a) for a in group.adapters):  # adapter objects of this process (the pytest plugin)
            run_in_process(group.adapters, group.tasks, result, hello)
        else:
            run_worker(group.adapters, group.tasks, result, hello, _python(group.environment))
    except Exception as exc:  # the driver side of a worker failed: record, never hang
        for order in group.orders:
            deliver(order, {"status": "error", "reason": f"worker driver failed: {type(exc).__name__}: {exc}"})
    finally:
        group.seconds = time.perf_counter() - started


def _group_task(adapters: list[AdapterInfo], tasks: list[Task], environment: envs.Environment | None
                ) -> tuple[list[dict], list[dict], float, str]:
    """A Ray task: run one group on this node; the hellos, one payload per task in order, its wall time and
    where it ran."""
    started = time.perf_counter()
    hellos: list[dict] = []
    payloads: list[dict | None] = [None] * len(tasks)

    def keep(j: int, payload: dict) -> None:
        payloads[j] = payload

    try:
        run_worker(adapters, tasks, keep, hellos.append, _python(environment))
    except Exception as exc:
        reason = f"worker driver failed on the Ray node: {type(exc).__name__}: {exc}"
        payloads = [p or {"status": "error", "reason": reason} for p in payloads]
    payloads = [p or {"status": "error", "reason": "no result from the Ray task"} for p in payloads]
    return hellos, payloads, time.perf_counter() - started, _where()


def _split_gpu(group: Group) -> list[Group]:
    """A group's CPU tasks and its GPU tasks as two groups (the GPU part then asks Ray for a GPU)."""
    parts = []
    for gpu in (False, True):
        chosen = [(o, t) for o, t in zip(group.orders, group.tasks, strict=True) if (t.device == "gpu") == gpu]
        if chosen:
            parts.append(Group(number=group.number, orders=[o for o, _ in chosen], adapters=group.adapters,
                               tasks=[t for _, t in chosen], environment=group.environment, gpu=gpu,
                               parent=group))
    return parts


def ray_available() -> str | None:
    """None when Ray can be imported, else why not (the ``ray`` extra)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "--executor ray needs Ray: pip install 'rmsprop-harness[ray]'"
    return None


def start_ray(jobs: int, address: str | None) -> bool:
    """Connect to ``address``, or start a local instance with ``jobs`` worker processes; whether it was
    started here (and so is shut down after the run). Call it, and wait on Ray, from the main thread:
    waits from another thread never returned here (Ray 2.60)."""
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        root = Path(__file__).resolve().parents[2]
        options["runtime_env"] = {"py_modules": [str(root / "harness"), str(root / "reference")]}
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=max(1, jobs), **options)
    return True


def _run_ray(groups: list[Group], deliver: Deliver, on_hello: Hello, jobs: int, address: str | None) -> None:
    missing = ray_available()
    if missing:
        raise RunError(missing)
    import ray

    for g in [g for g in groups if all(is_live(a) for a in g.adapters)]:  # objects of this process stay in it
        _run_local(g, deliver, on_hello)
    groups = [g for g in groups if not all(is_live(a) for a in g.adapters)]
    if not groups:
        return
    started_here = start_ray(jobs, address)
    try:
        remote = ray.remote(_group_task)
        # a GPU group asks for a GPU where the cluster has one; on a cluster without, it would wait forever,
        # so it runs anywhere and its worker reports the device absent (skipped rows), as the local executor does
        if ray.cluster_resources().get("GPU", 0) > 0:
            groups = [part for g in groups for part in _split_gpu(g)]
        pending = {}
        for g in sorted(groups, key=lambda g: len(g.tasks), reverse=True):
            ref = remote.options(num_cpus=1, num_gpus=1 if g.gpu else 0, max_retries=0).remote(
                [ADAPTERS[a] for a in g.adapters], g.tasks, g.environment)  # records: user adapters travel too
            pending[ref] = g
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(done[0])
            try:
                hellos, payloads, group.seconds, group.node = ray.get(done[0])
                if group.parent is not None:
                    group.parent.seconds += group.seconds
                    group.parent.node = ", ".join(filter(None, (group.parent.node, group.node)))
            except Exception as exc:  # the Ray task itself died (node lost, worker killed)
                reason = f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                hellos, payloads = [], [{"status": "error", "reason": reason}] * len(group.orders)
            for hello in hellos:
                on_hello(group.number, hello)
            for order, payload in zip(group.orders, payloads, strict=True):
                deliver(order, payload)
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["EXECUTORS", "Group", "ray_available", "run_groups", "start_ray"]
