"""examples/my_rmsprop.py's kernel with the planted bugs of issue 17, as user adapters (tests only)."""

from __future__ import annotations

import numpy as np

from examples.my_rmsprop import MyRMSprop
from harness.adapters import Snapshot


class Planted(MyRMSprop):
    bug = ""

    def run(self, task):
        kw = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0, **task.kwargs}
        a, eps = kw["alpha"], kw["eps"]
        p = task.initial()
        v = {n: np.zeros_like(x) for n, x in p.items()}
        for t, grads in task.gradients():
            for n, g in grads.items():
                if self.bug == "alpha-swapped":  # the weights of the average exchanged
                    v[n] = (1 - a) * v[n] + a * g * g
                else:
                    v[n] = a * v[n] + (1 - a) * g * g
                den = np.sqrt(v[n] + eps) if self.bug == "eps-inside" else np.sqrt(v[n]) + eps
                p[n] = p[n] - kw["lr"] * g / den
            if t in task.record_steps:
                yield Snapshot(t, {n: x.astype(np.float64) for n, x in p.items()},
                               {"nu": {n: x.astype(np.float64) for n, x in v.items()}})


def make_alpha_swapped():
    return type("AlphaSwapped", (Planted,), {"name": "alpha_swapped", "bug": "alpha-swapped"})()


def make_eps_inside():
    return type("EpsInside", (Planted,), {"name": "eps_inside", "bug": "eps-inside"})()
