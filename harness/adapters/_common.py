"""Small helpers shared by adapters (no framework imports here)."""

from __future__ import annotations

import importlib.util

import numpy as np


def missing(*modules: str) -> str | None:
    """The reason an adapter cannot run, or None when every module is importable."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"{', '.join(absent)} not installed (pip install 'rmsprop-harness[...]')"
    return None


def stack(trajectory: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    """Per-step dicts -> dict of float64 arrays (T, *shape)."""
    return {n: np.stack([np.asarray(step[n], np.float64) for step in trajectory]) for n in names}


def steps(case: dict) -> int:
    return len(next(iter(case["grads"].values())))
