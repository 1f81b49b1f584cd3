"""examples/my_rmsprop.py's kernel with the planted bugs of issue 17, as user adapters (tests only).

`Planted` claims torch's semantics (its arguments: lr, alpha, eps, momentum, weight_decay) and computes them,
but for one bug; `KerasLike` claims Keras 3's (learning_rate, rho, epsilon, momentum, weight_decay: eps inside
the sqrt, lr in the momentum buffer, decoupled weight decay) with its own bug. `rmsprop-harness identify
--adapter tests.planted_rmsprop:make_<bug>` names each (tests/test_identify.py).
"""

from __future__ import annotations

import numpy as np

from examples.my_rmsprop import MyRMSprop
from harness.adapters import Snapshot


class Planted(MyRMSprop):
    bug = ""

    def run(self, task):
        kw = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0, **task.kwargs}
        a, eps, mu, wd = kw["alpha"], kw["eps"], kw["momentum"], kw["weight_decay"]
        p = task.initial()
        v = {n: np.full_like(x, 1.0 if self.bug == "v0=1" else 0.0) for n, x in p.items()}
        b = {n: np.zeros_like(x) for n, x in p.items()}
        for t, grads in task.gradients():
            lr = kw["lr"] if task.lrs is None else task.lr(t)
            if self.bug == "lr-float32":  # a kernel that takes its scalars as float32
                lr = float(np.float32(lr))
            for n, g in grads.items():
                g = g + wd * p[n]
                if self.bug == "alpha-swapped":  # the weights of the average exchanged
                    v[n] = (1 - a) * v[n] + a * g * g
                else:
                    v[n] = a * v[n] + (1 - a) * g * g
                if self.bug == "eps-inside":
                    den = np.sqrt(v[n] + eps)
                elif self.bug == "eps2-inside":  # a kernel that squares eps "to keep it inside the root"
                    den = np.sqrt(v[n] + eps * eps)
                else:
                    den = np.sqrt(v[n]) + eps
                if self.bug == "momentum-ignored" or mu == 0:
                    p[n] = p[n] - lr * g / den
                elif self.bug == "lr-in-buffer":  # TF's form where torch's was meant
                    b[n] = mu * b[n] + lr * g / den
                    p[n] = p[n] - b[n]
                else:
                    b[n] = mu * b[n] + g / den
                    p[n] = p[n] - lr * b[n]
            if t in task.record_steps:
                yield Snapshot(t, {n: x.astype(np.float64) for n, x in p.items()},
                               {"nu": {n: x.astype(np.float64) for n, x in v.items()}})


class KerasLike(MyRMSprop):
    """Keras 3's RMSprop by hand, with L2 added to the gradient (coupled) where Keras decays the weights."""

    name = "keras_like"
    preset = "keras"

    def unsupported(self, task):
        lacking = [k for k, v in task.kwargs.items() if v and k not in ("learning_rate", "rho", "epsilon",
                                                                           "momentum", "weight_decay")]
        return f"unsupported: {lacking[0]}" if lacking else None

    def run(self, task):
        kw = {"learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-7, "momentum": 0.0, "weight_decay": None,
              **task.kwargs}
        rho, eps, mu, wd = kw["rho"], kw["epsilon"], kw["momentum"], kw["weight_decay"] or 0.0
        p = task.initial()
        v = {n: np.zeros_like(x) for n, x in p.items()}
        b = {n: np.zeros_like(x) for n, x in p.items()}
        for t, grads in task.gradients():
            lr = kw["learning_rate"] if task.lrs is None else task.lr(t)
            for n, g in grads.items():
                g = g + wd * p[n]  # the bug: Keras applies p -= lr*wd*p before the update instead
                v[n] = rho * v[n] + (1 - rho) * g * g
                increment = lr * g / np.sqrt(v[n] + eps)
                b[n] = mu * b[n] + increment if mu > 0 else increment
                p[n] = p[n] - b[n]
            if t in task.record_steps:
                yield Snapshot(t, {n: x.astype(np.float64) for n, x in p.items()},
                               {"nu": {n: x.astype(np.float64) for n, x in v.items()}})


def _planted(bug: str, cls: type = Planted):
    name = "planted_" + bug.replace("-", "_").replace("=", "")
    return type(name, (cls,), {"name": name, "bug": bug})()


def make_alpha_swapped():
    return _planted("alpha-swapped")


def make_eps_inside():
    return _planted("eps-inside")


def make_eps2_inside():
    return _planted("eps2-inside")


def make_lr_in_buffer():
    return _planted("lr-in-buffer")


def make_v0_one():
    return _planted("v0=1")


def make_lr_float32():
    return _planted("lr-float32")


def make_momentum_ignored():
    return _planted("momentum-ignored")


def make_coupled_decay():
    return KerasLike()
