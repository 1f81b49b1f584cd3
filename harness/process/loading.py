"""Loading adapters: ``module:attr`` targets instantiated in a worker, user adapters described in a subprocess.

The driver never imports a framework, and never imports a user's module: `describe` starts a
worker that imports the target and sends back its class attributes (name, preset, family,
environment, device kinds) over the channel (`harness.process.channel`, no pickles).
"""

from __future__ import annotations

import importlib
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.process import channel, spawn
from reference.errors import InputKeyError

STARTUP_GRACE = 120.0  # seconds a worker may spend importing its framework before the first task
ADAPTER_ATTRIBUTES = ("name", "available", "run", "devices", "unsupported")
TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
NAME = re.compile(r"[A-Za-z0-9_.+-]{1,100}")


def resolve_target(target: str) -> Any:
    """``"module:attr"`` (attr may be dotted): the object it names (a class or a factory)."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def instantiate(target: str) -> Any:
    """The adapter the class or factory at ``target`` returns."""
    return resolve_target(target)()


def explain(exc: BaseException) -> str:
    """An exception in one line, with the file and line it came from."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}{where}"[:500]


def attributes(adapter: Any, valid_presets: list[str]) -> dict[str, Any]:
    """An adapter's class attributes as the registry needs them, validated (`ValueError`/`TypeError`)."""
    missing = [m for m in ADAPTER_ATTRIBUTES if not hasattr(adapter, m)]
    if missing:
        raise TypeError(f"{type(adapter).__name__} is not an adapter (no {', '.join(missing)}); "
                        "subclass harness.adapters.Adapter")
    preset = getattr(adapter, "preset", "spec")
    if preset not in valid_presets:
        raise ValueError(f"preset {preset!r} is not one of {', '.join(valid_presets)}")
    name = str(adapter.name)
    if not NAME.fullmatch(name):
        raise ValueError(f"name {name!r}: use letters, digits and _.+-")
    kinds = tuple(getattr(adapter, "device_kinds", ("cpu", "gpu")))
    if not kinds or any(k not in ("cpu", "gpu") for k in kinds):
        raise ValueError(f"device_kinds {kinds!r}: a tuple from cpu, gpu")
    family = str(getattr(adapter, "family", None) or preset)
    if not NAME.fullmatch(family):
        raise ValueError(f"family {family!r}: use letters, digits and _.+-")
    return {"name": name, "preset": preset, "family": family,
            "env": {str(k): str(v) for k, v in dict(getattr(adapter, "env", {}) or {}).items()},
            "devices": list(kinds)}


def describe(target: str, env: dict[str, str] | None = None, python: str = sys.executable,
             timeout: float = STARTUP_GRACE) -> dict[str, Any]:
    """The class attributes of a user adapter, read in a subprocess (its module imports its
    framework); `InputKeyError` with one line when it cannot be loaded or is not an adapter."""
    if not TARGET.fullmatch(target):
        raise InputKeyError(f"adapter {target!r}: expected package.module:factory")
    worker = spawn.Worker("harness.process.loading", [target], env or {}, None, str(Path.cwd()), python)
    try:
        message = channel.Reader(worker.read_fd).read(time.monotonic() + timeout, 0)
    except TimeoutError:
        raise InputKeyError(f"adapter {target}: importing it took more than {timeout:.0f} s") from None
    except (channel.PeerClosed, channel.ChannelError):
        worker.close()
        raise InputKeyError(f"adapter {target}: describe exited with code {worker.proc.returncode}: "
                            f"{worker.last_line()}") from None
    finally:
        worker.close()
    meta = message.body
    if message.kind != "describe" or "error" in meta:
        raise InputKeyError(f"adapter {target}: {meta.get('error', 'no description')}")
    return meta


def describe_main(fd: int, target: str) -> int:
    """The worker's side of `describe`: import, instantiate, send the attributes (or why not)."""
    from reference import implementations

    try:
        meta = attributes(instantiate(target), implementations.names())
    except Exception as exc:
        meta = {"error": f"cannot load: {explain(exc)}"}
    channel.send(fd, "describe", meta)
    return 0


__all__ = ["STARTUP_GRACE", "TARGET", "attributes", "describe", "describe_main", "explain", "instantiate",
           "resolve_target"]


if __name__ == "__main__":
    spawn.worker_start()
    sys.exit(describe_main(int(sys.argv[1]), sys.argv[2]))
