"""The seed document's example, recorded: ``Linear(3, 2)`` + MSE on ``randn(10, 3)``/``randn(10, 2)``.

`record_seed` trains the model with ``torch.optim.RMSprop(lr=0.01, alpha=0.99,
eps=1e-8, weight_decay=0, momentum=0, centered=False)`` as the document does
(``torch.manual_seed(0)``, float32) and stores the gradient of every step with the
initial weights in the recorded layout of `harness.streams`. The ``seed`` suite
replays that file through every framework::

    python -m harness.seed_example suites/seed.npz   # needs torch; the file is committed
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .streams import record

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


if __name__ == "__main__":
    print(record_seed(sys.argv[1] if len(sys.argv) > 1 else "suites/seed.npz"))
