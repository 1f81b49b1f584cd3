"""Run adapter tasks in an isolated subprocess, one process per framework/backend.

Keras' backend choice and JAX's x64 switch are process-global, and TF, JAX and torch
fight over threads and memory, so the driver never imports a framework. `run_worker`
starts ``python -P -m harness.conformance.worker FD`` (`harness.process.spawn`) with the adapters'
environment, sends the tasks on its stdin and reads messages back from the pipe ``FD``
(`harness.process.channel`: JSON and ``.npy`` arrays, never pickles): first a ``hello``
(versions, devices, the math libraries' dispatch), then one ``result`` per task as soon
as it finishes, so the driver can write rows while others run. Each result is validated
in the driver (`harness.conformance.wire`) before it is measured.

A task that raises becomes an ``error`` result. A worker that crashes, sends a malformed
message or passes a task's timeout is killed; its current task becomes an ``error`` with
the reason and a fresh worker resumes with the next task, so one bad case or framework
never sinks the run.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.adapters import ADAPTERS, BUILTIN, AdapterInfo, Task
from harness.conformance import wire
from harness.process import channel, spawn
from harness.process.loading import STARTUP_GRACE, instantiate
from harness.process.loading import explain as _describe

Payload = dict[str, Any]


def run_worker(
    adapters: list[AdapterInfo | str],
    tasks: list[Task],
    on_result: Callable[[int, Payload], None],
    on_hello: Callable[[dict], None] | None = None,
    python: str = sys.executable,
) -> None:
    """Run ``tasks`` (each naming one of ``adapters``, which share an environment) in worker
    processes; call ``on_result(i, payload)`` for task i as results arrive. Never raises for
    a failing framework: every task gets exactly one payload."""
    infos = [ADAPTERS[a] if isinstance(a, str) else a for a in adapters]
    env = {k: v for info in infos for k, v in info.env.items()}
    targets = {i.name: i.target for i in infos}
    user_path = None if all(i.name in BUILTIN and ADAPTERS.get(i.name) == i for i in infos) else str(Path.cwd())
    pending = list(range(len(tasks)))
    while pending:
        done = _one_worker(python, env, targets, tasks, pending, on_result, on_hello, user_path)
        pending = [i for i in pending if i not in done]


def _one_worker(python, env, targets, tasks, pending, on_result, on_hello, user_path) -> set[int]:
    """Start one worker for ``pending``; return the task indices that got a payload."""
    done: set[int] = set()
    request = wire.request(targets, [(i, tasks[i]) for i in pending])
    worker = spawn.Worker("harness.conformance.worker", [], env, request, user_path, python)
    reader = channel.Reader(worker.read_fd)
    started = False
    current = pending[0]

    def fail(reason: str, victims: list[int]) -> None:
        for index in victims:
            on_result(index, {"status": "error", "reason": reason})
            done.add(index)

    try:
        for i in pending:
            current = i
            deadline = time.monotonic() + tasks[i].timeout + (0 if started else STARTUP_GRACE)
            while True:
                message = reader.read(deadline, wire.max_result_bytes(tasks[i]))
                if message.kind == "hello" and not started:
                    started = True
                    deadline = time.monotonic() + tasks[i].timeout  # the import grace is over
                    if on_hello is not None:
                        on_hello(message.body)
                    continue
                if message.kind != "result" or message.body.get("index") != i:
                    raise channel.ChannelError(f"an unexpected {message.kind!r} message (task {i} was due)")
                payload = wire.decode_result(tasks[i], message)
                done.add(i)
                on_result(i, payload)
                break
    except TimeoutError:
        worker.kill()
        fail(f"timed out after {tasks[current].timeout:g} s (worker killed)", [current])
    except channel.PeerClosed:
        code = worker.close()
        remaining = [i for i in pending if i not in done]
        # a worker that died before its hello (importing the framework) will die again
        fail(f"worker exited with code {code}: {worker.last_line()}", remaining if not started else remaining[:1])
    except channel.ChannelError as exc:
        worker.kill()
        fail(f"the worker sent a malformed message ({exc}); worker killed", [current])
    finally:
        worker.close()
    return done


# ---------------------------------------------------------------- worker side
def _load(targets: dict[str, str]) -> tuple[dict, dict]:
    """Instantiate adapters; ``status`` maps a name to (status, reason) when it cannot run."""
    adapters, status = {}, {}
    for name, target in targets.items():
        try:
            adapter = instantiate(target)
            if getattr(adapter, "name", None) != name:
                adapter.name = name  # an entry point's name wins over the adapter's own
            reason = adapter.available()
            if reason is not None:
                status[name] = ("skipped", str(reason))
            adapters[name] = adapter
        except Exception as exc:  # a broken adapter or framework: every task of it is an error
            status[name] = ("error", f"cannot load adapter {name}: {_describe(exc)}")
    return adapters, status


def _run_task(adapter, task: Task, devices: list[str]) -> tuple[Payload, list]:
    if task.device not in devices:
        if task.optional_device:
            return {"status": "absent", "reason": f"no {task.device} visible"}, []
        return {"status": "skipped", "reason": f"no {task.device} visible to {task.adapter}"}, []
    reason = adapter.unsupported(task)
    if reason is not None:
        return {"status": "unsupported", "reason": str(reason)}, []
    start = time.perf_counter()
    snapshots, last = [], 0
    for snap in adapter.run(task):  # stop early on what the driver would refuse anyway (an endless generator)
        step = getattr(snap, "step", None)
        if isinstance(step, int) and not isinstance(step, bool) and step <= last:
            raise wire.SnapshotError(f"the snapshot of step {step} came after step {last} (steps must increase, "
                                     "each once)")
        last = step if isinstance(step, int) else last
        snapshots.append(snap)
        if len(snapshots) > len(task.record_steps):
            raise wire.SnapshotError(f"adapter produced more than the {len(task.record_steps)} recorded steps")
    entries, arrays = wire.encode_snapshots(snapshots)
    return {"status": "done", "snapshots": entries, "seconds": time.perf_counter() - start,
            "device_name": str(adapter.device_name(task.device))}, arrays


def _missing_argument(exc: TypeError, task: Task, versions: dict) -> Payload:
    """An argument of the task that this version of the framework does not have (optax before 0.2.4 has no
    ``eps_in_sqrt``): the version cannot express the semantics, so ``unsupported``, not a crash."""
    match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if match is None or match[1] not in task.kwargs:
        return {"status": "error", "reason": _describe(exc)}
    installed = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    return {"status": "unsupported", "reason": f"unsupported: no argument {match[1]!r} in this version ({installed})"}


def serve(adapters: dict[str, Any], status: dict[str, tuple[str, str]], tasks: list[tuple[int, Task]],
          send: Callable[[str, dict, list], None]) -> None:
    """The worker's loop over loaded adapters: ``send("hello", ...)``, then one ``send("result", ...)`` per task
    (never raises for a failing adapter). The worker process sends to its channel; `harness.conformance.inprocess`
    calls it with live adapter objects, so both judge the same payloads."""
    from harness.base.fingerprint import dispatch

    hello: dict[str, Any] = {"versions": {}, "devices": {}, "python": sys.version.split()[0]}
    devices: dict[str, list[str]] = {}
    for name, adapter in adapters.items():
        if name in status:
            continue
        try:
            devices[name] = list(adapter.devices())
            hello["versions"].update({str(k): None if v is None else str(v) for k, v in adapter.versions().items()})
            hello["devices"][name] = {d: str(adapter.device_name(d)) for d in devices[name]}
        except Exception as exc:
            status[name] = ("error", f"{name} is installed but broken: {_describe(exc)}")
    hello["dispatch"] = dispatch()  # after the adapters loaded their frameworks
    send("hello", hello, [])
    for index, task in tasks:
        arrays: list = []
        if task.adapter in status:
            kind, reason = status[task.adapter]
            # an auto-picked device says nothing when the framework itself is absent: no row
            payload: Payload = {"status": "absent" if task.optional_device else kind, "reason": reason}
        else:
            try:
                payload, arrays = _run_task(adapters[task.adapter], task, devices[task.adapter])
            except wire.SnapshotError as exc:
                payload = {"status": "error", "reason": f"malformed result: {exc}"}
            except TypeError as exc:
                payload = _missing_argument(exc, task, hello["versions"])
            except Exception as exc:  # one bad task must not sink the batch
                payload = {"status": "error", "reason": _describe(exc)}
        send("result", {"index": index, **payload}, arrays)


def _main(fd: int) -> int:
    targets, tasks = wire.decode_request(channel.read_stdin_request())
    adapters, status = _load(targets)
    serve(adapters, status, tasks, lambda kind, body, arrays: channel.send(fd, kind, body, arrays))
    return 0


if __name__ == "__main__":
    spawn.worker_start()
    sys.exit(_main(int(sys.argv[1])))
