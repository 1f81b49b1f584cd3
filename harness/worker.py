"""Run adapter tasks in an isolated subprocess, one process per framework/backend.

Keras' backend choice and JAX's x64 switch are process-global, and TF, JAX and
torch fight over threads and memory, so the driver never imports a framework.
`run_worker` pickles the tasks to a file and starts ``python -m harness.worker
REQUEST FD`` with the adapters' environment; the worker sends framed pickles back
over the pipe ``FD``: first a ``hello`` (versions, devices), then one ``result``
per task as soon as it finishes, so the driver can write rows while others run.

A task that raises becomes an ``error`` result. A worker that crashes or passes a
task's timeout is killed; its current task becomes an ``error`` with the reason
and a fresh worker resumes with the next task, so one bad case or framework never
sinks the run.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .adapters import ADAPTERS, AdapterInfo, Task

Payload = dict[str, Any]  # {"status": "done", "snapshots": [...], "seconds": s} | {"status": ..., "reason": ...}
_HEADER = struct.Struct("<Q")
STARTUP_GRACE = 120.0  # seconds a worker may spend importing its framework before the first task


class _WorkerDied(Exception):
    pass


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
    env = _child_env({k: v for info in infos for k, v in info.env.items()})
    targets = {i.name: i.target for i in infos}
    pending = list(range(len(tasks)))
    while pending:
        done = _one_worker(python, env, targets, tasks, pending, on_result, on_hello)
        pending = [i for i in pending if i not in done]


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """A worker's environment: ours plus ``extra``, with this project and the current directory
    importable (a user adapter given as package.module:factory is found as it is here)."""
    env = {**os.environ, **extra, "PYTHONUNBUFFERED": "1"}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.getcwd(), env.get("PYTHONPATH")) if p)
    return env


def _one_worker(python, env, targets, tasks, pending, on_result, on_hello) -> set[int]:
    """Start one worker for ``pending``; return the task indices that got a payload."""
    done: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="rmsprop-worker-") as tmp:
        request = Path(tmp, "request.pkl")
        request.write_bytes(pickle.dumps({"adapters": targets, "tasks": [(i, tasks[i]) for i in pending]}))
        log = Path(tmp, "log.txt")
        read_fd, write_fd = os.pipe()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [python, "-m", "harness.worker", str(request), str(write_fd)],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
            )
        os.close(write_fd)
        reader = _Reader(read_fd)
        started = False
        try:
            for i in pending:
                deadline = time.monotonic() + tasks[i].timeout + (0 if started else STARTUP_GRACE)
                while True:
                    message = reader.read(deadline)
                    if message[0] == "hello":
                        started = True
                        deadline = time.monotonic() + tasks[i].timeout  # the import grace is over
                        if on_hello is not None:
                            on_hello(message[1])
                        continue
                    _, index, payload = message
                    done.add(index)
                    on_result(index, payload)
                    break
        except TimeoutError:
            proc.kill()
            proc.wait()
            index = next(i for i in pending if i not in done)
            on_result(index, {"status": "error", "reason": f"timed out after {tasks[index].timeout:g} s "
                                                           "(worker killed)"})
            done.add(index)
        except _WorkerDied:
            code = proc.wait()
            reason = f"worker exited with code {code}: {_last_line(log)}"
            remaining = [i for i in pending if i not in done]
            # a worker that died before its hello (importing the framework) will die again
            victims = remaining if not started else remaining[:1]
            for index in victims:
                on_result(index, {"status": "error", "reason": reason})
                done.add(index)
        finally:
            os.close(read_fd)
            if proc.poll() is None:
                proc.wait(timeout=30)
    return done


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


class _Reader:
    """Framed pickles from a pipe, with a deadline."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def _fill(self, n: int, deadline: float) -> None:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise _WorkerDied
            self.buf += chunk

    def read(self, deadline: float) -> tuple:
        self._fill(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(self.buf[:_HEADER.size])
        self._fill(_HEADER.size + size, deadline)
        data, self.buf = self.buf[_HEADER.size:_HEADER.size + size], self.buf[_HEADER.size + size:]
        return pickle.loads(data)


# ---------------------------------------------------------------- worker side
def _send(fd: int, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _describe(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}{where}"[:500]


def _instantiate(target: str):
    """``"module:attr"`` (attr may be dotted): the adapter that class or factory returns."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj()


def describe(target: str, env: dict[str, str] | None = None, python: str = sys.executable,
             timeout: float = STARTUP_GRACE) -> dict[str, Any]:
    """The class attributes of a user adapter, read in a subprocess (its module imports its
    framework); `KeyError` with one line when it cannot be loaded or is not an adapter."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", target):
        raise KeyError(f"adapter {target!r}: expected package.module:factory")
    try:
        proc = subprocess.run([python, "-m", "harness.worker", "--describe", target], env=_child_env(env or {}),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise KeyError(f"adapter {target}: importing it took more than {timeout:.0f} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise KeyError(f"adapter {target}: describe exited with code {proc.returncode}: {tail}")
    meta = json.loads(lines[-1])
    if "error" in meta:
        raise KeyError(f"adapter {target}: {meta['error']}")
    return meta


def _describe_main(target: str) -> int:
    from reference import presets

    try:
        adapter = _instantiate(target)
        missing = [m for m in ("name", "available", "run", "devices", "unsupported") if not hasattr(adapter, m)]
        if missing:
            raise TypeError(f"{type(adapter).__name__} is not an adapter (no {', '.join(missing)}); "
                            "subclass harness.adapters.Adapter")
        preset = getattr(adapter, "preset", "spec")
        if preset not in presets.PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {', '.join(presets.PRESETS)}")
        name = str(adapter.name)
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise ValueError(f"name {name!r}: use letters, digits and _.+-")
        kinds = tuple(getattr(adapter, "device_kinds", ("cpu", "gpu")))
        if not kinds or any(k not in ("cpu", "gpu") for k in kinds):
            raise ValueError(f"device_kinds {kinds!r}: a tuple from cpu, gpu")
        meta = {"name": name, "preset": preset, "family": getattr(adapter, "family", None) or preset,
                "env": {str(k): str(v) for k, v in dict(getattr(adapter, "env", {}) or {}).items()},
                "devices": list(kinds)}
    except Exception as exc:
        meta = {"error": f"cannot load: {_describe(exc)}"}
    print(json.dumps(meta), flush=True)
    return 0


def _load(targets: dict[str, str]) -> tuple[dict, dict]:
    """Instantiate adapters; ``status`` maps a name to (status, reason) when it cannot run."""
    adapters, status = {}, {}
    for name, target in targets.items():
        try:
            adapter = _instantiate(target)
            if getattr(adapter, "name", None) != name:
                adapter.name = name  # an entry point's name wins over the adapter's own
            reason = adapter.available()
            if reason is not None:
                status[name] = ("skipped", reason)
            adapters[name] = adapter
        except Exception as exc:  # a broken adapter or framework: every task of it is an error
            status[name] = ("error", f"cannot load adapter {name}: {_describe(exc)}")
    return adapters, status


def _run_task(adapter, task: Task, devices: list[str]) -> Payload:
    if task.device not in devices:
        if task.optional_device:
            return {"status": "absent", "reason": f"no {task.device} visible"}
        return {"status": "skipped", "reason": f"no {task.device} visible to {task.adapter}"}
    reason = adapter.unsupported(task)
    if reason is not None:
        return {"status": "unsupported", "reason": reason}
    start = time.perf_counter()
    snapshots = list(adapter.run(task))
    return {"status": "done", "snapshots": snapshots, "seconds": time.perf_counter() - start,
            "device_name": adapter.device_name(task.device)}


def _main(request_path: str, fd: int) -> int:
    request = pickle.loads(Path(request_path).read_bytes())
    adapters, status = _load(request["adapters"])
    hello: dict[str, Any] = {"versions": {}, "devices": {}, "python": sys.version.split()[0]}
    devices: dict[str, list[str]] = {}
    for name, adapter in adapters.items():
        if name in status:
            continue
        try:
            devices[name] = adapter.devices()
            hello["versions"].update(adapter.versions())
            hello["devices"][name] = {d: adapter.device_name(d) for d in devices[name]}
        except Exception as exc:
            status[name] = ("error", f"{name} is installed but broken: {_describe(exc)}")
    _send(fd, ("hello", hello))
    for index, task in request["tasks"]:
        if task.adapter in status:
            kind, reason = status[task.adapter]
            # an auto-picked device says nothing when the framework itself is absent: no row
            payload: Payload = {"status": "absent" if task.optional_device else kind, "reason": reason}
        else:
            try:
                payload = _run_task(adapters[task.adapter], task, devices[task.adapter])
            except Exception as exc:  # one bad task must not sink the batch
                payload = {"status": "error", "reason": _describe(exc)}
        _send(fd, ("result", index, payload))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--describe":
        sys.exit(_describe_main(sys.argv[2]))
    sys.exit(_main(sys.argv[1], int(sys.argv[2])))
