"""An RMSprop written as one function per tensor and step, as an adapter.

The shortest way to put a port or a kernel binding under test (the pytest plugin and
`harness.conformance.check` accept such a function directly)::

    def my_step(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):   # the preset's argument names
        nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
        return param - lr * grad / (np.sqrt(nu) + eps), {"nu": nu}

``param`` and ``grad`` are NumPy arrays in the run's dtype, ``state`` the dict the function
returned at the previous step for this tensor (empty at the first). The keyword arguments are a
case's native arguments for ``preset`` (none in a case of the framework's defaults, so the function's
own defaults are judged against the preset's), the lr replaced by the scheduled one at each step
when the case has a schedule. State under the reference's names (``nu``, ``mu``, ``trace``) is
compared; other keys are carried along unchecked. The new parameter is stored in the run's dtype,
as a real implementation stores it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from harness.adapters.base import STATE_KINDS, Adapter, Snapshot, Task
from reference import implementations

StepFn = Callable[..., tuple[Any, dict]]


class StepFunction(Adapter):
    """Adapter for ``fn(param, grad, state, **native_args) -> (new_param, new_state)``."""

    framework = "numpy"

    def __init__(self, fn: StepFn, *, preset: str, name: str | None = None,
                 dtypes: tuple[str, ...] = ("float32", "float64")):
        if not callable(fn):
            raise TypeError(f"{fn!r} is not a step function")
        self.fn = fn
        self.preset = preset
        self.name = name or re.sub(r"[^A-Za-z0-9_.+-]", "_", getattr(fn, "__name__", "step")).strip("_") or "step"
        self.dtypes = tuple(dtypes)
        self.device_kinds = ("cpu",)
        self._accepts = _keywords(fn)

    def available(self) -> str | None:
        return None

    def unsupported(self, task: Task) -> str | None:
        if self._accepts is not None:
            lacking = [k for k in task.kwargs if k not in self._accepts]
            if lacking:
                return f"unsupported: {lacking[0]} ({self.name} has no argument {lacking[0]!r})"
        return super().unsupported(task)

    def run(self, task: Task) -> Iterator[Snapshot]:
        lr_name = implementations.get(self.preset).knobs.get("lr")
        params = task.initial()
        state: dict[str, dict] = {n: {} for n in params}
        for t, grads in task.gradients():
            kwargs = dict(task.kwargs)
            if task.lrs is not None and lr_name:
                kwargs[lr_name] = task.lr(t)
            for n, g in grads.items():
                out = self.fn(params[n], g, state[n], **kwargs)
                if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
                    raise TypeError(f"{self.name} returned {type(out).__name__}; a step function returns "
                                    "(new_param, state_dict)")
                params[n] = np.asarray(out[0]).astype(params[n].dtype)  # stored in the run's dtype
                state[n] = out[1]
            if t in task.record_steps:
                kinds = [k for k in STATE_KINDS if all(k in state[n] for n in params)]
                yield Snapshot(t, {n: np.array(x, np.float64) for n, x in params.items()},
                               {k: {n: np.array(np.broadcast_to(state[n][k], params[n].shape), np.float64)
                                    for n in params} for k in kinds})


def _keywords(fn: StepFn) -> set[str] | None:
    """The keyword arguments ``fn`` takes; None when it takes any (``**kwargs``) or cannot be inspected."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters[3:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


__all__ = ["StepFunction"]
