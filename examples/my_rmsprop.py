# my_rmsprop.py: your RMSprop (NumPy here; call your CUDA/Triton kernel instead) as a harness adapter
import numpy as np

from harness.adapters import Adapter, Snapshot


class MyRMSprop(Adapter):
    name = "my_rmsprop"
    framework = "numpy"  # the package whose version the report records
    preset = "torch"  # the semantics claimed: each case's torch arguments, judged against torch's reference
    dtypes = ("float32", "float64")

    def available(self):  # None, or why it cannot run here (its rows are then skipped with that reason)
        return None

    def unsupported(self, task):  # a knob this kernel lacks gives an unsupported row, never a wrong run
        lacking = [k for k, v in task.kwargs.items() if v and k not in ("lr", "alpha", "eps", "momentum",
                                                                           "weight_decay")]
        return f"unsupported: {lacking[0]}" if lacking else super().unsupported(task)

    def run(self, task):
        kw = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0, **task.kwargs}
        p = task.initial()  # NumPy arrays, already in the run dtype
        v = {n: np.zeros_like(x) for n, x in p.items()}
        b = {n: np.zeros_like(x) for n, x in p.items()}
        for t, grads in task.gradients():  # the same bits every adapter and the reference get
            lr = kw["lr"] if task.lrs is None else task.lr(t)
            for n, g in grads.items():
                g = g + kw["weight_decay"] * p[n]
                v[n] = kw["alpha"] * v[n] + (1 - kw["alpha"]) * g * g
                b[n] = kw["momentum"] * b[n] + g / (np.sqrt(v[n]) + kw["eps"])
                p[n] = p[n] - lr * b[n]
            if t in task.record_steps:  # float64 copies; state under the reference's names (nu, mu, trace)
                yield Snapshot(t, {n: x.astype(np.float64) for n, x in p.items()},
                               {"nu": {n: x.astype(np.float64) for n, x in v.items()}})


def make_adapter():
    return MyRMSprop()


# -- not part of the docs example (docs/adapters.md): the same kernel with a deliberate bug, for the tests and the docs
class BuggyRMSprop(MyRMSprop):
    """eps 1e-7 where the arguments say 1e-8 (say, a hard-coded constant in a kernel)."""

    name = "my_rmsprop_buggy"

    def run(self, task):
        from dataclasses import replace

        yield from super().run(replace(task, kwargs={**task.kwargs, "eps": 1e-7}))


def make_buggy_adapter():
    return BuggyRMSprop()
