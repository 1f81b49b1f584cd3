"""Adapter objects that live in this process: the pytest plugin's and the Python API's way in.

A run normally names adapters by target and starts their worker processes. An adapter object
(an instance, or a step function wrapped by `harness.adapters.step`) registered here gets an
`AdapterInfo` like any other, is planned like any other, and its tasks run in this process
through the worker's own loop (`harness.conformance.worker.serve`): the same payloads, checks and
verdicts as ``rmsprop-harness run --adapter module:factory``, without the process isolation (a
crash or hang of the adapter is the caller's, and task timeouts are not enforced).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from harness.adapters import ADAPTERS, BUILTIN, AdapterInfo, Task, info
from harness.conformance import wire
from harness.process.channel import Message
from harness.process.loading import attributes, explain
from reference import implementations
from reference.errors import InputKeyError

TARGET_PREFIX = "<in-process>"  # the registry's "module" of a live adapter (never imported)

_LIVE: dict[str, Any] = {}
_SHADOWED: dict[str, AdapterInfo] = {}  # a user adapter registered by target under the same name, until unregister
_LOCK = threading.Lock()


def register(adapter: Any) -> AdapterInfo:
    """Add a live adapter object to `ADAPTERS` under its ``name`` (validated as a user adapter's class
    attributes are); registering the same object again is a no-op. A user adapter registered by target
    under that name (``--adapter module:factory`` earlier in this process) is shadowed until `unregister`.
    `InputKeyError` when the name is a built-in adapter's or another live object's."""
    try:
        meta = attributes(adapter, implementations.names())
    except (TypeError, ValueError) as exc:
        raise InputKeyError(f"adapter {type(adapter).__name__}: {exc}") from None
    name = meta["name"]
    with _LOCK:
        if _LIVE.get(name) is adapter:
            return ADAPTERS[name]
        if name in _LIVE or name in BUILTIN:
            taken = "another object in this process" if name in _LIVE else f"the built-in {ADAPTERS[name].target}"
            raise InputKeyError(f"adapter {name!r}: the name is taken by {taken}; give yours another name")
        if name in ADAPTERS:
            _SHADOWED[name] = ADAPTERS[name]
        _LIVE[name] = adapter
        ADAPTERS[name] = info(f"{TARGET_PREFIX}:{name}", {**meta, "env": {}})
    return ADAPTERS[name]


def unregister(name: str) -> None:
    with _LOCK:
        if _LIVE.pop(name, None) is not None:
            del ADAPTERS[name]
            if name in _SHADOWED:
                ADAPTERS[name] = _SHADOWED.pop(name)


def is_live(name: str) -> bool:
    return name in _LIVE


def run_in_process(adapters: list[str], tasks: list[Task], on_result: Callable[[int, dict], None],
                   on_hello: Callable[[dict], None] | None = None) -> None:
    """`harness.conformance.worker.run_worker` for live adapters: one payload per task, decoded and validated
    exactly as a worker process's result is."""
    from harness.conformance.worker import serve

    live, status = {}, {}
    for name in adapters:
        live[name] = _LIVE[name]
        try:
            reason = live[name].available()
        except Exception as exc:
            reason, status[name] = None, ("error", f"{name}.available() raised {explain(exc)}")
        if reason is not None:
            status[name] = ("skipped", str(reason))

    def send(kind: str, body: dict, arrays: list) -> None:
        if kind == "hello":
            if on_hello is not None:
                on_hello(body)
            return
        index = body["index"]
        on_result(index, wire.decode_result(tasks[index], Message(kind, body, list(arrays))))

    serve(live, status, list(enumerate(tasks)), send)


__all__ = ["TARGET_PREFIX", "is_live", "register", "run_in_process", "unregister"]
