"""Resource limits, checked before anything is allocated: one line and exit 2, never a swap storm.

Fixed caps keep absurd inputs out (`MAX_PARAMS` per case, `MAX_RECORDS`, `MAX_STEPS`,
`MAX_PARITY_STEPS`, `MAX_TENSORS`); `check_case` and `check_parity` also estimate the memory a
case's float64 reference (or a parity scenario) holds and compare it with what the machine
has available (``MemAvailable``), leaving half for the frameworks' workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from reference.errors import InputValueError

MAX_PARAMS = 50_000_000  # parameters of one conformance case (all tensors)
MAX_TENSORS = 100_000  # tensors of one case or bench point
MAX_STEPS = 100_000_000  # steps of one conformance case
MAX_RECORDS = 10_000  # recorded steps of one case
MAX_PARITY_STEPS = 100_000  # steps of a parity or translate scenario (every spec, at every scale, replays them)
CHUNK_BYTES = 64 << 20  # gradient rows generated or read at a time
TRAJECTORY_BYTES = 1 << 30  # reference trajectories a parity runner keeps in memory
_STATE_ARRAYS = 3  # nu, mu, trace


class LimitError(InputValueError):
    """An input that would exceed a fixed cap or the machine's memory; one line."""


def available_memory() -> int | None:
    """Bytes the machine can still give (``MemAvailable``), None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.2g} GB"


def check_memory(need: int, what: str) -> None:
    free = available_memory()
    if free is not None and need > free // 2:
        raise LimitError(f"{what} needs about {_gb(need)}; {_gb(free)} is available (at most half of it is used, "
                         "the rest is for the frameworks)")


def count_params(shapes: dict[str, Any]) -> int:
    return sum(math.prod(int(d) for d in s) for s in shapes.values())


def check_shapes(shapes: dict[str, Any], where: str) -> None:
    n = count_params(shapes)
    if len(shapes) > MAX_TENSORS:
        raise LimitError(f"{where}: {len(shapes)} tensors (at most {MAX_TENSORS})")
    if n > MAX_PARAMS:
        raise LimitError(f"{where}: {n:,} parameters (at most {MAX_PARAMS:,} per case)")


def reference_bytes(n_params: int, records: int) -> int:
    """The driver's memory for one reference trajectory: at each recorded step the parameters and every
    state with their budget scales, plus a chunk of gradients and the running state."""
    kept = records * (1 + _STATE_ARRAYS) * 2 * n_params * 8
    running = (4 + 2 * _STATE_ARRAYS) * n_params * 8
    return kept + running + min(CHUNK_BYTES, 64 * n_params * 8) * 3


def check_case(case: Any, records: int) -> None:
    """A case's reference (one per dtype at a time, ``records`` recorded steps) and one result being measured
    must fit."""
    n = count_params(case.shapes)
    per_dtype = reference_bytes(n, records)
    result = records * (1 + _STATE_ARRAYS) * n * 8 * 2  # received snapshots and their float64 copies
    check_memory(per_dtype * len(case.dtypes) + result, f"case {case.name!r} ({n:,} parameters, {records} recorded "
                                                        "steps)")


def check_parity(steps: int, n_params: int, where: str) -> None:
    if steps > MAX_PARITY_STEPS:
        raise LimitError(f"{where}: {steps:,} steps (at most {MAX_PARITY_STEPS:,}: every spec of the comparison "
                         "replays them)")
    need = 40 * n_params * 8 + min(steps * n_params * 8, CHUNK_BYTES * 4) + min(TRAJECTORY_BYTES, 200 * 48 * n_params)
    check_memory(need, f"{where} ({n_params:,} parameters)")


__all__ = ["CHUNK_BYTES", "MAX_PARAMS", "MAX_PARITY_STEPS", "MAX_RECORDS", "MAX_STEPS", "MAX_TENSORS", "LimitError",
           "available_memory", "check_case", "check_memory", "check_parity", "check_shapes", "count_params"]
