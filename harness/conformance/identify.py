"""Identify a framework's RMSprop through its adapter: the probe of `reference.identify` run in the adapter's
worker (the same process isolation as a run), in float64 where the adapter computes in float64."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.adapters import ADAPTERS, Task
from harness.base.streams import StreamSpec
from reference.errors import InputValueError
from reference.identify import STEPS, Identification, Probe


def observe_many(adapter: str, configurations: list[dict[str, Any]], dtype: str, pr: Probe,
                 python: str | None = None) -> list[np.ndarray | Exception]:
    """The probe through ``adapter`` once per configuration (its native arguments; the probe's lr as a
    schedule), all in one worker process: per configuration the parameters after every step, or the reason
    it could not run (`Unsupported` for a dtype or knob the adapter lacks)."""
    from harness.conformance.worker import run_worker

    k = pr.params0.size
    tasks = [Task(adapter=adapter, kwargs=kw, stream=StreamSpec("arrays", options={"grads": {"x": pr.grads}}),
                  shapes={"x": (k,)}, params0={"x": pr.params0}, steps=STEPS, dtype=dtype,
                  record_steps=tuple(range(1, STEPS + 1)), lrs=np.asarray(pr.lrs, np.float64))
             for kw in configurations]
    out: dict[int, dict] = {}
    run_worker([ADAPTERS[adapter]], tasks, out.__setitem__, python=python or sys.executable)
    results: list[np.ndarray | Exception] = []
    for i in range(len(tasks)):
        payload = out[i]
        if payload["status"] == "unsupported":
            results.append(Unsupported(str(payload.get("reason"))))
        elif payload["status"] != "done":
            results.append(InputValueError(f"{adapter} could not run the probe: {payload['status']}: "
                                           f"{payload.get('reason')}"))
        else:
            results.append(np.stack([s.params["x"] for s in payload["snapshots"]]))
    return results


def observer(adapter: str, kwargs: dict[str, Any], dtype: str) -> Callable[[Probe], np.ndarray]:
    """Runs a probe through ``adapter`` with its native ``kwargs`` (`observe_many` of one)."""

    def run(pr: Probe) -> np.ndarray:
        result = observe_many(adapter, [kwargs], dtype, pr)[0]
        if isinstance(result, Exception):
            raise result
        return result

    return run


def identify_configurations(adapter: str, configurations: list[dict[str, Any]], python: str | None = None
                            ) -> list[Identification | Exception]:
    """`identify_adapter` for many argument sets at once (one worker runs every probe, `_observe_all`): an
    identification per configuration, or why it could not run."""
    from reference.identify import fit_observed, probe

    pr = probe()
    results, dtype = _observe_all(adapter, configurations, pr, python)
    return [r if isinstance(r, Exception) else fit_observed(pr, r, dtype=dtype, prefer=ADAPTERS[adapter].preset)
            for r in results]


def identify_recording(path: str, lr: float | None = None, steps: int = 48, elements: int = 128) -> Identification:
    """What produced a recording's ``trajectory/`` from its ``grads/``, ``params/`` and ``lr`` (or a constant
    ``lr``): every tensor flattened into one vector (RMSprop is elementwise), the first ``steps`` steps and up
    to ``elements`` evenly spaced elements (enough to decide every knob, small enough to fit quickly); judged
    in float32 budgets when every recorded parameter is a float32 number (a float32 training loop)."""
    from pathlib import Path

    from harness.base.recordings import Recording
    from reference.identify import Probe, arithmetic, fit_observed

    rec = Recording(Path(path))
    params0 = rec.params()
    t = min(steps, rec.steps)
    trajectory = rec.trajectory(0, t)
    if params0 is None or trajectory is None:
        raise InputValueError(f"{path}: identify needs params/<name> (the initial values) and trajectory/<name> "
                              "(the parameters after each step) beside grads/<name>; see docs/identify.md")
    recorded = rec.lrs()
    if recorded is None and lr is None:
        raise InputValueError(f"{path}: no recorded lr; give the constant learning rate with --lr")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise InputValueError(f"--lr {lr!r}: a learning rate is a finite number > 0")
    lrs = recorded[:t] if recorded is not None else np.full(t, float(lr))
    names = list(rec.shapes)
    grads = rec.read(0, t)

    def flat(d: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(d[n], np.float64).reshape(len(d[n]), -1) for n in names], axis=1)

    g, obs = flat(grads), flat(trajectory)
    p0 = np.concatenate([np.asarray(params0[n], np.float64).ravel() for n in names])
    pick = np.unique(np.linspace(0, p0.size - 1, min(elements, p0.size)).astype(int))
    # a float32 training loop (the usual one) is judged in float32 budgets: its values all are float32 numbers
    return fit_observed(Probe(p0[pick], g[:, pick], lrs), obs[:, pick], dtype=arithmetic(obs))


class Unsupported(InputValueError):
    """The adapter refuses the probe as asked (a dtype it does not run, a knob it lacks)."""


def _observe_all(adapter: str, configurations: list[dict[str, Any]], pr: Probe, python: str | None = None
                 ) -> tuple[list[np.ndarray | Exception], str]:
    """The probe through ``adapter`` for each configuration, and the dtype it ran in: float64, or float32 when
    the adapter refuses every configuration in float64 (it does not run float64: its worker says so; the driver
    imports no adapter module)."""
    results = observe_many(adapter, configurations, "float64", pr, python)
    if results and all(isinstance(r, Unsupported) for r in results):
        return observe_many(adapter, configurations, "float32", pr, python), "float32"
    return results, "float64"


def identify_adapter(adapter: str, kwargs: dict[str, Any], audit: dict[str, Any] | None = None
                     ) -> tuple[Identification, list[str]]:
    """What ``adapter`` with ``kwargs`` computes, as the nearest implementation's preset plus differences, and
    (given ``audit``: the arguments not to audit, the required ones) the arguments that change nothing."""
    from reference.identify import fit_observed, probe

    pr = probe()
    [full], dtype = _observe_all(adapter, [kwargs], pr)
    if isinstance(full, Exception):
        raise full
    found = fit_observed(pr, full, dtype=dtype, prefer=ADAPTERS[adapter].preset)
    return found, ([] if audit is None else _ignored(adapter, kwargs, audit, pr, full, dtype))


def _ignored(adapter: str, kwargs: dict[str, Any], required: dict[str, Any], pr: Probe, full: np.ndarray,
             dtype: str) -> list[str]:
    """The arguments in ``kwargs`` set away from their defaults that change nothing: the probe's trajectory
    (``full``) is bit-identical without each, one at a time. How bitsandbytes' ``momentum`` is caught with no
    prior knowledge."""
    import inspect

    from reference import implementations, presets

    preset = ADAPTERS[adapter].preset
    record = implementations.get(preset)
    defaults = {n: p.default for n, p in inspect.signature(presets.get(preset)).parameters.items()}
    out = []
    for name, value in kwargs.items():
        # the probe drives the lr itself; an argument at its default changes nothing by definition
        if name in required or name == record.knobs.get("lr") or defaults.get(name, object()) == value:
            continue
        rest = {k: v for k, v in kwargs.items() if k != name}
        try:
            without = observer(adapter, rest, dtype)(pr)
        except InputValueError:
            continue
        if np.array_equal(full, without, equal_nan=True):
            out.append(f"{name}={value!r}")
    return out


__all__ = ["Unsupported", "identify_adapter", "identify_configurations", "identify_recording", "observe_many",
           "observer"]
