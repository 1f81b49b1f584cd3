"""Closed-loop workloads, each defined once: parameters, data, batch order, loss; no framework here.

Every framework builds the same model natively from a `Workload` (`harness.training.frameworks`):
the initial weights are one float64 master copy rounded to the run dtype, the batches are the same
indices in the same order, and the loss is the same function written with the framework's own ops.

Parameters are named and shaped in one canonical layout, the Keras/JAX one: a dense kernel is
``(in, out)``, a convolution kernel ``(kh, kw, in, out)`` (HWIO) over NHWC images, and a flattened
feature map is in (h, w, c) order. torch transposes on the way in and out.

=========  ==============================================================================
seed       the seed document's ``Linear(3, 2)`` + MSE on ``randn(10, 3)``/``randn(10, 2)``
           (``torch.manual_seed(0)``: data and weights as that script makes them, vendored)
quadratic  ``f(x, y) = (a x^2 + b y^2) / 2``, a = 0.05, b = 4 (condition number 80): the seed
           document's contour picture, closed loop, from (-4.5, 1.5)
mlp        64-32-10 tanh MLP, softmax cross-entropy, on the 1,797 8x8 digits (UCI, as
           scikit-learn ships them; vendored), minibatches of 64 in a seeded order
conv       3x3 convolution 1->8, ReLU, flatten, dense 8*6*6->10 on the same digits
=========  ==============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reference.errors import InputKeyError

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One closed-loop training problem (see the module docstring)."""

    name: str
    description: str
    model: str  # "linear" | "quadratic" | "mlp" | "conv": what each framework builds
    loss: str  # "mse" | "quadratic" | "xent"
    steps: int  # training steps of a run unless the user says otherwise
    lr: float  # the learning rate of the "same" and "translated" settings
    batch: int | None = None  # minibatch size; None: the whole data set every step
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # canonical names, layout and order
    seed: int = 0

    @property
    def classifier(self) -> bool:
        return self.loss == "xent"

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes.values())

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (float64) and targets (float64, or int64 class labels)."""
        if self.model == "linear":
            with np.load(DATA / "seed_linear.npz") as f:
                return f["x"].astype(np.float64), f["y"].astype(np.float64)
        if self.model == "quadratic":
            return np.zeros((1, 1)), np.zeros((1, 1))  # no data: the loss is a function of the point
        with np.load(DATA / "digits.npz") as f:
            x = f["images"].astype(np.float64) / 16.0  # pixels 0..16 -> [0, 1], exact in every dtype
            y = f["labels"].astype(np.int64)
        return (x.reshape(-1, 8, 8, 1) if self.model == "conv" else x), y

    def init(self) -> dict[str, np.ndarray]:
        """The float64 master copy of the initial parameters."""
        if self.model == "linear":
            with np.load(DATA / "seed_linear.npz") as f:
                return {"kernel": f["weight"].astype(np.float64).T.copy(), "bias": f["bias"].astype(np.float64)}
        if self.model == "quadratic":
            return {"point": np.array(QUADRATIC_START)}
        out = {}
        for i, (name, shape) in enumerate(self.shapes.items()):
            if name.endswith("bias"):
                out[name] = np.zeros(shape)
                continue
            fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
            if len(shape) == 4:  # a conv kernel: receptive field times channels
                fan_out = shape[0] * shape[1] * shape[3]
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, every framework's dense default
            out[name] = np.random.default_rng([self.seed, i]).uniform(-limit, limit, shape)
        return out

    def batches(self, steps: int, n: int) -> list[np.ndarray | None]:
        """The sample indices of each step (None: all of them); a seeded permutation per epoch."""
        if self.batch is None:
            return [None] * steps
        per_epoch = n // self.batch  # the last partial batch is dropped (every batch has one size)
        out: list[np.ndarray | None] = []
        epoch = 0
        while len(out) < steps:
            order = np.random.default_rng([self.seed, 1_000_003, epoch]).permutation(n)
            out += [order[i * self.batch:(i + 1) * self.batch] for i in range(per_epoch)]
            epoch += 1
        return out[:steps]


QUADRATIC_CURVATURE = (0.05, 4.0)  # harness.compare.seed_example.QUADRATIC: the seed document's valley
QUADRATIC_START = (-4.5, 1.5)

WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload(name="seed", description="the seed document's Linear(3, 2) + MSE on randn(10, 3)/randn(10, 2)",
             model="linear", loss="mse", steps=100, lr=0.01, shapes={"kernel": (3, 2), "bias": (2,)}),
    Workload(name="quadratic", description="the ill-conditioned valley (a x^2 + b y^2)/2, a = 0.05, b = 4, closed loop",
             model="quadratic", loss="quadratic", steps=100, lr=0.1, shapes={"point": (2,)}),
    Workload(name="mlp", description="64-32-10 tanh MLP, softmax cross-entropy, 8x8 digits (1,797), batches of 64",
             model="mlp", loss="xent", steps=300, lr=1e-3, batch=64,
             shapes={"hidden.kernel": (64, 32), "hidden.bias": (32,), "out.kernel": (32, 10), "out.bias": (10,)}),
    Workload(name="conv", description="3x3 conv 1->8, ReLU, flatten, dense 288->10 on the 8x8 digits, batches of 64",
             model="conv", loss="xent", steps=200, lr=1e-3, batch=64,
             shapes={"conv.kernel": (3, 3, 1, 8), "conv.bias": (8,), "out.kernel": (288, 10), "out.bias": (10,)}),
)}


def get(name: str) -> Workload:
    if name not in WORKLOADS:
        raise InputKeyError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


def log_steps(steps: int, points: int = 24) -> list[int]:
    """0 (the initial weights), 1, 2, ... log-spaced up to ``steps``: where parameters are recorded."""
    grid = np.unique(np.round(np.geomspace(1, max(steps, 1), points)).astype(int))
    return [0, *[int(s) for s in grid if 1 <= s <= steps]]


def flatten(params: dict[str, np.ndarray]) -> np.ndarray:
    """The canonical parameter vector (float64)."""
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in params.values()])


__all__ = ["QUADRATIC_CURVATURE", "QUADRATIC_START", "WORKLOADS", "Workload", "flatten", "get", "log_steps"]
