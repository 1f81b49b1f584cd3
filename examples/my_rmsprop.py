"""A user-supplied adapter: your own RMSprop judged like the frameworks (a CUDA or Triton kernel plugs in alike).

    rmsprop-harness run --adapter examples.my_rmsprop:make_adapter        # ok: torch's semantics, float32 and float64
    rmsprop-harness run --adapter examples.my_rmsprop:make_buggy_adapter  # fail: eps 1e-7 where 1e-8 was asked
"""

import numpy as np

from harness.adapters import Adapter, Snapshot


class MyRMSprop(Adapter):
    name = "my_rmsprop"
    framework = "numpy"  # the package whose version the report records
    preset = "torch"  # the semantics it claims: it gets each case's torch arguments and torch's reference
    dtypes = ("float32", "float64")

    def __init__(self, eps_override: float | None = None):
        self.eps_override = eps_override

    def available(self):
        return None  # or why it cannot run here, e.g. "needs a CUDA GPU": its rows are then skipped

    def unsupported(self, task):
        extra = sorted(k for k, v in task.kwargs.items() if v and k not in ("lr", "alpha", "eps", "momentum",
                                                                           "weight_decay"))
        return f"unsupported: {extra[0]} ({self.name} implements lr, alpha, eps, momentum)" if extra else \
            super().unsupported(task)

    def run(self, task):
        kw = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0, **task.kwargs}
        eps = self.eps_override or kw["eps"]
        params = task.initial()  # NumPy arrays in the run dtype; task.gradients() yields the same bits to everyone
        sq = {n: np.zeros_like(p) for n, p in params.items()}
        buf = {n: np.zeros_like(p) for n, p in params.items()}
        for t, grads in task.gradients():
            lr = kw["lr"] if task.lrs is None else task.lr(t)
            for n, p in params.items():
                g = grads[n] + kw["weight_decay"] * p
                sq[n] = kw["alpha"] * sq[n] + (1 - kw["alpha"]) * g * g
                step = g / (np.sqrt(sq[n]) + eps)
                if kw["momentum"] > 0:
                    buf[n] = kw["momentum"] * buf[n] + step
                    step = buf[n]
                params[n] = p - lr * step
            if t in task.record_steps:  # parameters and state as float64, under the reference's names
                state = {"nu": dict(sq), **({"trace": dict(buf)} if kw["momentum"] > 0 else {})}
                yield Snapshot(t, {n: p.astype(np.float64) for n, p in params.items()},
                               {k: {n: a.astype(np.float64) for n, a in v.items()} for k, v in state.items()})


def make_adapter() -> MyRMSprop:
    return MyRMSprop()


def make_buggy_adapter() -> MyRMSprop:
    adapter = MyRMSprop(eps_override=1e-7)
    adapter.name = "my_rmsprop_buggy"
    return adapter
