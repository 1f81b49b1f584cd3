"""The seed document's two examples: the recorded ``Linear(3, 2)`` model and the contour-line picture.

**The model.** ``Linear(3, 2)`` + MSE on ``randn(10, 3)``/``randn(10, 2)``.

`record_seed` trains the model with ``torch.optim.RMSprop(lr=0.01, alpha=0.99,
eps=1e-8, weight_decay=0, momentum=0, centered=False)`` as the document does
(``torch.manual_seed(0)``, float32) and stores the gradient of every step with the
initial weights in the recorded layout of `harness.base.streams`. The ``seed`` suite
replays that file through every framework::

    python -m harness.compare.seed_example suites/seed.npz   # needs torch; the file is committed

**The picture.** The document explains RMSprop with contour lines: on a valley steep in
one direction and flat in the other, SGD zig-zags across the valley and crawls along
it, RMSprop divides each coordinate by its own RMS and heads for the minimum.
`quadratic_paths` computes those trajectories on ``f(x, y) = (a x^2 + b y^2) / 2``
for SGD and for each framework's RMSprop (its float64 reference, with the same
settings copied in and its own defaults otherwise), so the picture also shows
where the frameworks part ways (TF1's accumulator starting at 1 crawls at first).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from harness.base.streams import record

#: The valley: flat along x, steep along y (condition number b/a = 80), and where every path starts.
QUADRATIC = {"a": 0.05, "b": 4.0, "start": (-4.5, 1.5)}

STEPS = 100


def record_seed(path: str | Path, steps: int = STEPS) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x = torch.randn(10, 3)
    y = torch.randn(10, 2)
    linear = nn.Linear(3, 2)
    criterion = nn.MSELoss()
    optimizer = torch.optim.RMSprop(linear.parameters(), lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0,
                                    momentum=0, centered=False)
    params = {n: p.detach().numpy().copy() for n, p in linear.named_parameters()}
    grads: dict[str, list[np.ndarray]] = {n: [] for n in params}
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(linear(x), y)
        loss.backward()
        for n, p in linear.named_parameters():
            grads[n].append(p.grad.detach().numpy().copy())
        optimizer.step()
    return record(path, {n: np.stack(g) for n, g in grads.items()}, params)


def quadratic_paths(steps: int = 50, sgd_lr: float = 0.45, settings: dict | None = None,
                    frameworks: tuple[str, ...] = ("torch", "keras", "tf_keras_legacy", "tf1", "optax"),
                    ) -> dict[str, np.ndarray]:
    """``name -> (steps + 1, 2)`` points of each optimizer on the `QUADRATIC` valley, closed loop
    (the gradient ``(a x, b y)`` of the current point). SGD's lr is close to its stability limit
    ``2/b`` along y, as in the document's picture; RMSprop gets ``settings`` (default lr 0.1,
    decay 0.9) in each framework's own arguments."""
    from harness.compare.parity import Scenario
    from reference import init, update

    a, b = QUADRATIC["a"], QUADRATIC["b"]
    curvature = np.array([a, b])
    start = np.array(QUADRATIC["start"], np.float64)
    paths = {}
    p = start.copy()
    path = [p.copy()]
    for _ in range(steps):
        p = p - sgd_lr * curvature * p
        path.append(p.copy())
    paths[f"SGD (lr {sgd_lr:g})"] = np.array(path)
    scenario = Scenario("quadratic", settings or {"lr": 0.1, "decay": 0.9}, frameworks)
    specs, _ = scenario.specs()
    for name, spec in specs.items():
        p, state = start.copy(), init(spec, start)
        path = [p.copy()]
        for _ in range(steps):
            p, state = update(spec, state, p, curvature * p)
            path.append(np.asarray(p).copy())
        paths[name] = np.array(path)
    return paths


def quadratic_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.5 * (QUADRATIC["a"] * x * x + QUADRATIC["b"] * y * y)


if __name__ == "__main__":
    print(record_seed(sys.argv[1] if len(sys.argv) > 1 else "suites/seed.npz"))
