"""Options shared by the commands and the Python API, validated in the library (one line each, exit 2).

The command line only splits its comma lists (`harness.cli.args.split`); what the values mean is
checked here, so ``run_suite(devices=["tpu"])`` fails the same way ``--device tpu`` does.
"""

from __future__ import annotations

import math

from harness.base.dtypes import DTYPES
from reference.errors import InputValueError

DEVICES = ("cpu", "gpu", "auto")


class OptionError(InputValueError):
    """An option value that cannot be used; one line."""


def devices(chosen: list[str] | None) -> list[str] | None:
    """cpu, gpu (cuda is gpu) or auto alone (cpu, plus a gpu only when one is visible)."""
    if chosen is None:
        return None
    chosen = list(dict.fromkeys("gpu" if d == "cuda" else d for d in chosen))
    bad = [d for d in chosen if d not in DEVICES]
    if bad:
        raise OptionError(f"--device {bad[0]!r} is not a device (choose cpu, gpu or auto)")
    if "auto" in chosen and len(chosen) > 1:
        raise OptionError("--device auto cannot be combined with other devices")
    return chosen


def dtypes(chosen: list[str] | None) -> list[str] | None:
    for d in chosen or []:
        if d not in DTYPES:
            raise OptionError(f"--dtype {d!r} is not a dtype (choose from {', '.join(DTYPES)})")
    return chosen


def integer(value: int | None, flag: str, low: int, high: int) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
        raise OptionError(f"{flag} {value} must be in [{low}, {high}]")
    return value


def number(value: float | None, flag: str, low: float, high: float, open_low: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low \
            or value > high or (open_low and value == low):
        raise OptionError(f"{flag} {value} must be in {'(' if open_low else '['}{low:g}, {high:g}]")
    return value


__all__ = ["DEVICES", "OptionError", "devices", "dtypes", "integer", "number"]
