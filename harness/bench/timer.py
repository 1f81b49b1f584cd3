"""The timer, which only measures (after ``torch.utils.benchmark``'s ``blocked_autorange``).

`measure` times an optimizer step (``Stepper.step`` blocks ended by one ``Stepper.sync``) and
returns a `harness.base.measurement.Measurement`: the raw samples, lazily derived statistics.
"""

from __future__ import annotations

import time

from harness.adapters.base import Stepper
from harness.base.measurement import Measurement


def _block(stepper: Stepper, n: int) -> float:
    if getattr(stepper, "device_time", None) is not None:  # a GPU step: the device's own clock (CUDA events)
        return stepper.device_time(n)
    step, sync = stepper.step, stepper.sync
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return time.perf_counter() - start


def measure(stepper: Stepper, min_time: float = 0.2, repeats: int = 7, max_warmup: float = 3.0,
            min_warmup: float = 0.1, key: tuple = ()) -> Measurement:
    """Per-step time of ``stepper``, after ``blocked_autorange``:

    1. the first step alone (with synchronisation): tracing and compilation included;
    2. warm-up in blocks of growing size until two consecutive per-step times agree within 10%
       and ``min_warmup`` has passed (at most ``max_warmup``);
    3. samples of ``n`` steps and one ``sync()``, ``n`` chosen so a sample lasts
       ``min_time / repeats``, until there are ``repeats`` of them *and* ``min_time`` has passed.
    """
    stepper.sync()
    first = _block(stepper, 1)
    warm_start, n, previous = time.perf_counter(), 1, None
    while True:
        per_step = _block(stepper, n) / n
        settled = previous is not None and abs(per_step - previous) <= 0.1 * previous
        if settled and time.perf_counter() - warm_start >= min_warmup:
            break
        if time.perf_counter() - warm_start > max_warmup:
            break
        previous = per_step
        n = max(1, min(n * 2, int(0.05 / max(per_step, 1e-9)) or 1))
    warmup = time.perf_counter() - warm_start
    n = max(1, round(min_time / repeats / max(per_step, 1e-9)))
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - started < min_time:
        samples.append(_block(stepper, n) / n)
    return Measurement(sample_s=tuple(samples), key=key, steps_per_sample=n, first_step_s=first, warmup_s=warmup)


__all__ = ["Measurement", "measure"]
