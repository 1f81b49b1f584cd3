"""Float64 reference RMSprop: the spec, the reference, framework presets, an exact oracle.

>>> from reference import presets, run_reference
>>> spec = presets.torch(lr=0.01, alpha=0.99)
"""

from . import presets
from .budget import UNIT_ROUNDOFF, budget_ratio, budget_scale, rounding_tolerance
from .rmsprop import RMSpropState, init, iterate_reference, learning_rate, run_reference, update
from .spec import ROUNDABLE, RMSpropSpec

__all__ = [
    "ROUNDABLE",
    "UNIT_ROUNDOFF",
    "RMSpropSpec",
    "RMSpropState",
    "budget_ratio",
    "budget_scale",
    "init",
    "iterate_reference",
    "learning_rate",
    "presets",
    "rounding_tolerance",
    "run_reference",
    "update",
]
