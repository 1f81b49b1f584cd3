"""The run dtypes and the one rounding every side of a comparison shares."""

from __future__ import annotations

import numpy as np

from reference.errors import InputValueError

DTYPES = ("float16", "bfloat16", "float32", "float64")


class DtypeError(InputValueError):
    """An unknown dtype; one line."""


def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` (round to nearest even), returned as float64.

    bfloat16 is rounded by hand through float32 (NumPy has no bfloat16). That double
    rounding can differ from direct rounding in a rare tie, which does not matter
    here: the framework and the reference both get this function's result.
    """
    x = np.asarray(x, np.float64)
    if dtype == "float64":
        return x
    if dtype in ("float32", "float16"):
        with np.errstate(over="ignore"):
            return x.astype(dtype).astype(np.float64)
    if dtype == "bfloat16":
        return to_bfloat16_bits(x).astype(np.float64)
    raise DtypeError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array holding ``x`` rounded to bfloat16 (round to nearest even; NaN kept)."""
    with np.errstate(over="ignore"):
        f = np.asarray(x, np.float64).astype(np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(f), f, out)


def native(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` as a NumPy array an adapter converts to ``dtype`` exactly (bfloat16 as float32)."""
    if dtype == "bfloat16":
        return to_bfloat16_bits(x)
    with np.errstate(over="ignore"):
        return np.asarray(x, np.float64).astype(dtype)


__all__ = ["DTYPES", "DtypeError", "cast", "native", "to_bfloat16_bits"]
