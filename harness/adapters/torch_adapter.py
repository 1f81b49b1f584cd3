"""`torch.optim.RMSprop`, for-loop or foreach (``case["foreach"]``)."""

from __future__ import annotations

import numpy as np

from ._common import missing, stack, steps


def available() -> str | None:
    return missing("torch")


def run_case(case: dict) -> dict[str, np.ndarray]:
    import torch

    dtype = getattr(torch, case["dtype"])
    names = list(case["params0"])
    params = [torch.nn.Parameter(torch.tensor(case["params0"][n], dtype=dtype)) for n in names]
    kwargs = dict(case["kwargs"])
    if case.get("foreach") is not None:  # the for-loop / foreach variant of the adapter
        kwargs["foreach"] = case["foreach"]
    opt = torch.optim.RMSprop(params, **kwargs)
    lrs = case.get("lrs")
    out = []
    for t in range(steps(case)):
        for p, n in zip(params, names, strict=True):
            p.grad = torch.tensor(case["grads"][n][t], dtype=dtype)
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = float(lrs[t])
        opt.step()
        out.append({n: p.detach().to(torch.float64).numpy().copy()
                    for n, p in zip(names, params, strict=True)})
    return stack(out, names)
