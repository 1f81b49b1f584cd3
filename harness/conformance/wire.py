"""What the worker messages mean: tasks to the worker, validated results back (see `harness.process.channel`).

A result is checked here, in the driver, before anything is measured: every recorded step
of the task exactly once and in order, every tensor with its shape, finite-or-not real
numbers only. Anything else becomes an ``error`` payload for that task alone ("adapter
produced 1 of 9 recorded steps", "snapshot of step 3: tensor 'w' has shape (2,), expected
(2, 3)"), so a broken adapter can neither pass nor take the run down with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from harness.adapters.base import STATE_KINDS, Snapshot, Task
from harness.base.streams import StreamSpec
from harness.process.channel import ChannelError, Message, encode

Payload = dict[str, Any]


class SnapshotError(ValueError):
    """A result that does not describe the task's recorded steps; the reason becomes an error row."""


# ------------------------------------------------------------------------ tasks
def _stream_arrays(stream: StreamSpec) -> tuple[dict[str, Any], dict[str, list[str] | None], list[np.ndarray]]:
    options = {k: v for k, v in stream.options.items() if k not in ("grads", "params")}
    names: dict[str, list[str] | None] = {}
    arrays: list[np.ndarray] = []
    for key in ("grads", "params"):
        value = stream.options.get(key)
        names[key] = None if value is None else list(value)
        for v in (value or {}).values():
            arrays.append(np.asarray(v, np.float64))
    return options, names, arrays


def encode_task(index: int, task: Task) -> tuple[dict[str, Any], list[np.ndarray]]:
    """A task as a JSON body and its arrays (initial parameters, schedule, in-memory stream)."""
    options, stream_names, stream_arrays = _stream_arrays(task.stream)
    body = {"index": index, "adapter": task.adapter, "kwargs": task.kwargs,
            "stream": {"kind": task.stream.kind, "seed": task.stream.seed, "options": options,
                       "arrays": stream_names},
            "shapes": {n: list(s) for n, s in task.shapes.items()}, "steps": task.steps, "dtype": task.dtype,
            "device": task.device, "record_steps": list(task.record_steps), "optional_device": task.optional_device,
            "timeout": task.timeout, "params0": list(task.params0), "lrs": task.lrs is not None}
    arrays = [np.asarray(p, np.float64) for p in task.params0.values()]
    if task.lrs is not None:
        arrays.append(np.asarray(task.lrs, np.float64))
    return body, arrays + stream_arrays


def decode_task(body: Mapping[str, Any], arrays: list[np.ndarray]) -> tuple[int, Task]:
    arrays = list(arrays)
    params0 = {n: arrays.pop(0) for n in body["params0"]}
    lrs = arrays.pop(0) if body["lrs"] else None
    stream = body["stream"]
    options = dict(stream["options"])
    for key in ("grads", "params"):
        names = stream["arrays"].get(key)
        if names is not None:
            options[key] = {n: arrays.pop(0) for n in names}
    task = Task(adapter=body["adapter"], kwargs=body["kwargs"],
                stream=StreamSpec(stream["kind"], stream["seed"], options),
                shapes={n: tuple(s) for n, s in body["shapes"].items()}, params0=params0, steps=body["steps"],
                dtype=body["dtype"], device=body["device"], record_steps=tuple(body["record_steps"]), lrs=lrs,
                optional_device=body["optional_device"], timeout=body["timeout"])
    return body["index"], task


def request(targets: Mapping[str, str], tasks: Iterable[tuple[int, Task]]) -> bytes:
    """The request frame a conformance worker reads from its stdin."""
    bodies, arrays = [], []
    for index, task in tasks:
        body, arr = encode_task(index, task)
        body["n_arrays"] = len(arr)
        bodies.append(body)
        arrays += arr
    try:
        return encode("request", {"adapters": dict(targets), "tasks": bodies}, arrays)
    except TypeError as exc:  # a Python-API caller passed arguments a worker cannot receive
        raise ValueError(f"task arguments must be JSON values (numbers, strings, lists, tables): {exc}") from None


def decode_request(message: Message) -> tuple[dict[str, str], list[tuple[int, Task]]]:
    arrays = list(message.arrays)
    tasks = []
    for body in message.body["tasks"]:
        n = body["n_arrays"]
        tasks.append(decode_task(body, arrays[:n]))
        del arrays[:n]
    return message.body["adapters"], tasks


# ----------------------------------------------------------------------- results
def _real(value: Any, what: str) -> np.ndarray:
    """An adapter's array as float64, refusing what is not an array of real numbers."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise SnapshotError(f"{what} is not an array of real numbers (dtype {array.dtype}, "
                            f"{type(value).__name__})")
    return np.array(array, dtype=np.float64, copy=True)


def encode_snapshots(snapshots: list[Any]) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """The worker's side: snapshots as an index and plain float64 arrays (`SnapshotError` when an
    adapter yielded something that is not a snapshot of real arrays)."""
    entries, arrays = [], []
    for k, snap in enumerate(snapshots):
        step, params, state = (getattr(snap, a, None) for a in ("step", "params", "state"))
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or not isinstance(params, Mapping):
            raise SnapshotError(f"snapshot {k + 1} is not a Snapshot(step, params, state) "
                                f"(got {type(snap).__name__})")
        entry: dict[str, Any] = {"step": int(step), "params": [], "state": {}}
        for name, value in params.items():
            entry["params"].append(str(name))
            arrays.append(_real(value, f"snapshot of step {step}: parameter {name!r}"))
        for kind, tensors in (state or {}).items():
            if not isinstance(tensors, Mapping):
                raise SnapshotError(f"snapshot of step {step}: state {kind!r} is not a mapping of tensors")
            entry["state"][str(kind)] = []
            for name, value in tensors.items():
                entry["state"][str(kind)].append(str(name))
                arrays.append(_real(value, f"snapshot of step {step}: state {kind}[{name!r}]"))
        entries.append(entry)
    return entries, arrays


def max_result_bytes(task: Task) -> int:
    """The largest result a correct adapter can send for ``task`` (every recorded step, the
    parameters and three state tensors each), with room for the ``.npy`` headers."""
    n_params = sum(math.prod(s) for s in task.shapes.values())
    arrays = len(task.record_steps) * (1 + len(STATE_KINDS)) * len(task.shapes)
    return len(task.record_steps) * (1 + len(STATE_KINDS)) * n_params * 8 + arrays * 256 + 4096


def decode_result(task: Task, message: Message) -> Payload:
    """A worker's result as the payload the runner uses; a malformed one is an ``error`` payload."""
    body = message.body
    status = body.get("status")
    if status != "done":
        if status not in ("error", "skipped", "unsupported", "absent"):
            raise ChannelError(f"a result with status {status!r}")
        return {"status": status, "reason": str(body.get("reason", ""))[:2000]}
    try:
        snapshots = _snapshots(task, body.get("snapshots"), message.arrays)
    except SnapshotError as exc:
        return {"status": "error", "reason": f"malformed result: {exc}"}
    seconds = body.get("seconds")
    return {"status": "done", "snapshots": snapshots,
            "seconds": float(seconds) if isinstance(seconds, int | float) else math.nan,
            "device_name": str(body.get("device_name", ""))[:200]}


def _snapshots(task: Task, entries: Any, arrays: list[np.ndarray]) -> list[Snapshot]:
    if not isinstance(entries, list):
        raise SnapshotError("no snapshot list")
    arrays = list(arrays)
    names = list(task.shapes)
    expected = list(task.record_steps)
    out: list[Snapshot] = []

    def take(what: str, name: str) -> np.ndarray:
        if not arrays:
            raise SnapshotError(f"{what}: no array sent")
        a = arrays.pop(0)
        if tuple(a.shape) != tuple(task.shapes[name]):
            raise SnapshotError(f"{what} has shape {tuple(a.shape)}, expected {tuple(task.shapes[name])}")
        return np.asarray(a, np.float64)

    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int) or isinstance(entry["step"], bool):
            raise SnapshotError("a snapshot without a step number")
        step = entry["step"]
        if step not in expected:
            raise SnapshotError(f"a snapshot of step {step}, which is not a recorded step "
                                f"({_steps(expected)})")
        if out and step <= out[-1].step:
            raise SnapshotError(f"the snapshot of step {step} came after step {out[-1].step} (steps must "
                                "increase, each once)")
        params_names = entry.get("params")
        if not isinstance(params_names, list) or sorted(map(str, params_names)) != sorted(names):
            raise SnapshotError(f"snapshot of step {step}: parameters {params_names!r}, expected {names!r}")
        params = {n: take(f"snapshot of step {step}: parameter {n!r}", n) for n in params_names}
        state: dict[str, dict[str, np.ndarray]] = {}
        raw_state = entry.get("state", {})
        if not isinstance(raw_state, dict):
            raise SnapshotError(f"snapshot of step {step}: malformed state")
        for kind, tensors in raw_state.items():
            if kind not in STATE_KINDS:
                raise SnapshotError(f"snapshot of step {step}: unknown state {kind!r} (states: "
                                    f"{', '.join(STATE_KINDS)})")
            if not isinstance(tensors, list) or not set(tensors) <= set(names) or len(set(tensors)) != len(tensors):
                raise SnapshotError(f"snapshot of step {step}: state {kind} names {tensors!r}, parameters "
                                    f"are {names!r}")
            state[kind] = {n: take(f"snapshot of step {step}: state {kind}[{n!r}]", n) for n in tensors}
        out.append(Snapshot(step, params, state))
    if arrays:
        raise SnapshotError(f"{len(arrays)} arrays more than the snapshots name")
    if len(out) != len(expected):
        got = {s.step for s in out}
        missing = [t for t in expected if t not in got]
        raise SnapshotError(f"adapter produced {len(out)} of {len(expected)} recorded steps (missing "
                            f"{_steps(missing)})")
    return out


def _steps(steps: list[int]) -> str:
    return ", ".join(map(str, steps[:6])) + (f" and {len(steps) - 6} more" if len(steps) > 6 else "")


__all__ = ["SnapshotError", "decode_request", "decode_result", "encode_snapshots", "max_result_bytes", "request"]
