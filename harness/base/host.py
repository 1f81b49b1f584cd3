"""Small helpers shared by adapters (no framework imports here)."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path


def missing(*modules: str) -> str | None:
    """The reason an adapter cannot run, or None when every module is importable."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"{', '.join(absent)} not installed (pip install 'rmsprop-harness[...]')"
    return None


def package_version(name: str) -> str | None:
    """The installed version of a distribution, read from its metadata (no import), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
