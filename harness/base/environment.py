"""What a reader needs to reproduce a run: versions, machine fingerprint, git revision, command."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.base import fingerprint
from harness.base.host import cpu_name, package_version
from reference import implementations


def git() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"revision": rev, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def environment(**extra: Any) -> dict[str, Any]:
    """The common part of every env.json; ``extra`` adds the command's own keys."""
    return {
        "harness": package_version("rmsprop-harness"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "machine": fingerprint.machine(),
        "packages": {p: package_version(p) for p in ("numpy", "pandas", "pyarrow", *implementations.packages())},
        "git": git(),
        "command": sys.argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def finish(env: dict[str, Any], hellos: list[dict[str, Any]], started: float) -> None:
    """Complete ``env`` before a publish: the workers' hellos, the fingerprint, the wall time since
    ``started`` (a `time.perf_counter` reading)."""
    env["workers"] = {f"worker{n}": h for n, h in enumerate(hellos)}
    env["fingerprint"] = fingerprint.fingerprint(env.get("machine") or fingerprint.machine(), hellos)
    env["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    env["wall_seconds"] = round(time.perf_counter() - started, 3)


def __getattr__(name: str):
    if name == "FRAMEWORK_PACKAGES":  # distributions whose versions every env.json reports (the records')
        return implementations.packages()
    raise AttributeError(name)


__all__ = [  # noqa: F822 - FRAMEWORK_PACKAGES is computed from the implementation records
    "FRAMEWORK_PACKAGES", "environment", "finish", "git"]
