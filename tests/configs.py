"""The one matrix of configurations every test reuses (in the spirit of torch's OptimizerInfo).

Each `Config` is a framework-native argument set for one preset, plus the adapter
that drives the real framework with those same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reference import RMSpropSpec, presets


@dataclass(frozen=True)
class Config:
    preset: str
    kwargs: dict[str, Any]
    adapter: str
    schedule: bool = False  # drive a per-step learning rate
    dtype: str = "float64"  # float32 for implementations that compute in float32 whatever they are given

    @property
    def id(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return (f"{self.preset}({args}){'+schedule' if self.schedule else ''}"
                f"{'' if self.dtype == 'float64' else '@' + self.dtype}")

    def spec(self) -> RMSpropSpec:
        return presets.get(self.preset)(**self.kwargs)


def _variants(preset: str, adapter: str, base: dict, extra: list[dict]) -> list[Config]:
    return [Config(preset, {**base, **kw}, adapter) for kw in extra]


_TORCH = _variants("torch", "torch.single", {}, [
    {},
    {"lr": 0.003, "momentum": 0.9},
    {"lr": 0.003, "centered": True},
    {"lr": 0.003, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
    {"lr": 0.01, "alpha": 0.9, "eps": 1.0, "maximize": True},
    {"lr": 0.003, "eps": 0.0, "alpha": 0.5},
])
_TORCH += _variants("torch", "torch.foreach", {"lr": 0.003, "centered": True, "momentum": 0.9}, [{}])
_KERAS = _variants("keras", "keras.tensorflow", {}, [
    {},
    {"learning_rate": 0.01, "momentum": 0.9},
    {"learning_rate": 0.01, "centered": True, "momentum": 0.5},
    {"learning_rate": 0.01, "weight_decay": 0.05, "clipnorm": 1.0},
    {"learning_rate": 0.01, "global_clipnorm": 2.0, "rho": 0.95},
    {"learning_rate": 0.01, "clipvalue": 0.5, "epsilon": 1e-3},
    {"learning_rate": 0.01, "gradient_accumulation_steps": 3, "loss_scale_factor": 128.0},
    {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 7},
])
_KERAS_JAX = _variants("keras_jax", "keras.jax", {}, [
    {},
    {"learning_rate": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1},
    {"learning_rate": 0.01, "weight_decay": 0.05, "clipnorm": 1.0},
    {"learning_rate": 0.01, "global_clipnorm": 2.0, "momentum": 0.5},
])
_KERAS_TORCH = _variants("keras_torch", "keras.torch", {}, [
    {},
    {"learning_rate": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1},
    {"learning_rate": 0.01, "weight_decay": 0.05, "clipvalue": 0.3},
    {"learning_rate": 0.01, "global_clipnorm": 5.0, "centered": True},
    {"learning_rate": 0.01, "clipnorm": 0.3, "momentum": 0.9},
])
_TF_KERAS = _variants("tf_keras", "tf_keras", {}, [
    {},
    {"learning_rate": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1},
    {"learning_rate": 0.01, "clipnorm": 0.5, "clipvalue": 0.1},
    {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 5},
])
_LEGACY = _variants("tf_keras_legacy", "tf_keras_legacy", {}, [
    {},
    {"learning_rate": 0.01, "centered": True},
    {"learning_rate": 0.01, "momentum": 0.9},
    {"learning_rate": 0.01, "momentum": 0.5, "centered": True},
    {"learning_rate": 0.01, "epsilon": 0.0, "decay": 0.05, "clipvalue": 0.5, "clipnorm": 1.0},
])
_TF1 = _variants("tf1", "tf1", {"learning_rate": 0.01}, [
    {},
    {"momentum": 0.9},
    {"centered": True, "momentum": 0.5, "decay": 0.95, "epsilon": 1e-6},
])
_TF1 += _variants("tf1", "tf1.function", {"learning_rate": 0.01}, [{"centered": True, "momentum": 0.9}])
_TF_RAW = _variants("tf_raw", "tf.raw", {"lr": 0.01, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}, [
    {},
    {"momentum": 0.9},
    {"centered": True, "momentum": 0.5, "rho": 0.95, "epsilon": 1e-6},
    {"centered": True, "ms_init": 1.0},
])
_OPTAX = _variants("optax", "optax", {"learning_rate": 0.01}, [
    {},
    {"eps_in_sqrt": False, "decay": 0.99},
    {"momentum": 0.9, "nesterov": True},
    {"centered": True, "momentum": 0.5},
    {"initial_scale": 1.0, "bias_correction": True},
    {"centered": True, "eps_in_sqrt": False, "momentum": 0.9},
])

#: Configurations with a per-step learning rate (schedules), one per lr semantics.
_SCHEDULED = [
    Config("torch", {"lr": 0.01, "momentum": 0.9}, "torch.single", schedule=True),
    Config("optax", {"learning_rate": 0.01, "momentum": 0.9}, "optax", schedule=True),
    Config("keras", {"learning_rate": 0.01, "momentum": 0.9}, "keras.tensorflow", schedule=True),
    Config("tf1", {"learning_rate": 0.01, "momentum": 0.9}, "tf1", schedule=True),
    Config("tf1", {"learning_rate": 0.01, "momentum": 0.9}, "tf1.function", schedule=True),
    Config("tf_raw", {"lr": 0.01, "rho": 0.9, "momentum": 0.9, "epsilon": 1e-7}, "tf.raw", schedule=True),
    Config("keras_torch", {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.1}, "keras.torch",
           schedule=True),
]



def _from_records() -> list[Config]:
    """The records' own ``examples``, through every adapter of the record (issue 16: a new implementation
    brings its test configurations in its record), in the first dtype the adapter runs of float64, float32."""
    from harness.adapters import ADAPTERS, BUILTIN
    from reference import implementations

    out = []
    for record in implementations.all_records():
        adapters = [a for a in BUILTIN if ADAPTERS[a].preset == record.name]
        for adapter in adapters:
            dtype = _dtype(adapter)
            out += [Config(record.name, dict(kw), adapter, dtype=dtype) for kw in record.examples]
        if record.examples and adapters:  # one scheduled run per record: the lr side of its momentum buffer
            kw = next((kw for kw in record.examples if any("momentum" in k for k in kw)), record.examples[0])
            out.append(Config(record.name, dict(kw), adapters[0], schedule=True, dtype=_dtype(adapters[0])))
    return out


def _dtype(adapter: str) -> str:
    from harness.adapters import ADAPTERS
    from harness.process.loading import resolve_target

    dtypes = resolve_target(ADAPTERS[adapter].target).dtypes
    return "float64" if "float64" in dtypes else "float32"

CONFIGS: list[Config] = [*_TORCH, *_KERAS, *_KERAS_JAX, *_KERAS_TORCH, *_TF_KERAS, *_LEGACY, *_TF1,
                         *_TF_RAW, *_OPTAX, *_SCHEDULED, *_from_records()]

#: Configurations where rounding is amplified beyond any a-priori budget (see
#: reference.exact.sensitivity); tests that bound rounding error skip these.
ILL_CONDITIONED = {"optax(learning_rate=0.01,centered=True,bias_correction=True)"}

STEPS = 50


def model_params(seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny 'model': named tensors of different shapes."""
    rng = np.random.default_rng(seed)
    return {"weight": rng.normal(size=(2, 3)), "bias": rng.normal(size=(2,)), "scale": rng.normal(size=(4,))}


def gradient_stream(params: dict[str, np.ndarray], steps: int = STEPS,
                    seed: int = 1) -> dict[str, np.ndarray]:
    """Gradients of mixed magnitude 1e-3 .. 10 per coordinate and step, as (T, *shape) per tensor."""
    rng = np.random.default_rng(seed)
    return {n: rng.normal(size=(steps, *p.shape)) * 10.0 ** rng.uniform(-3, 1, size=(steps, *p.shape))
            for n, p in params.items()}


def schedule(steps: int = STEPS) -> np.ndarray:
    """A warm-up then exponential decay, so lr-in-buffer and lr-after-buffer really differ."""
    t = np.arange(steps, dtype=np.float64)
    return 0.01 * np.minimum(1.0, (t + 1) / 5) * 0.95**t


def run_frameworks(configs: list[Config], params: dict[str, np.ndarray],
                   grads: dict[str, np.ndarray]) -> dict[str, dict]:
    """Every config through its real framework (float64, CPU), one worker per process environment;
    ``{"params": (T, *shape) per tensor}``, ``{"skipped": reason}`` or ``{"error": reason}`` by config id."""
    from harness.adapters import ADAPTERS, Task
    from harness.base.streams import StreamSpec
    from harness.conformance.worker import run_worker

    steps = len(next(iter(grads.values())))
    stream = StreamSpec("arrays", options={"grads": grads})
    shapes = {n: p.shape for n, p in params.items()}
    by_worker: dict[tuple, list[Config]] = {}
    for cfg in configs:
        by_worker.setdefault(ADAPTERS[cfg.adapter].worker_key, []).append(cfg)
    results = {}
    for cfgs in by_worker.values():
        tasks = [Task(adapter=c.adapter, kwargs=c.kwargs, stream=stream, shapes=shapes, params0=params, steps=steps,
                      dtype=c.dtype,
                      record_steps=tuple(range(1, steps + 1)), lrs=schedule(steps) if c.schedule else None)
                 for c in cfgs]
        payloads: dict[int, dict] = {}
        run_worker(list(dict.fromkeys(c.adapter for c in cfgs)), tasks, payloads.__setitem__)
        for i, cfg in enumerate(cfgs):
            p = payloads[i]
            if p["status"] == "done":
                results[cfg.id] = {"params": {n: np.stack([s.params[n] for s in p["snapshots"]]) for n in params},
                                   "snapshots": p["snapshots"]}
            else:
                results[cfg.id] = {"skipped" if p["status"] == "skipped" else "error": p["reason"]}
    return results


def per_step(grads: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    steps = len(next(iter(grads.values())))
    return [{n: g[t] for n, g in grads.items()} for t in range(steps)]


#: Discrete arguments the random configurations vary where a preset has them (beside the neutral knobs).
_DISCRETE_ARGS = {"nesterov": (False, True), "eps_in_sqrt": (False, True), "bias_correction": (False, True),
                  "lr_in_momentum": (False, True), "decoupled_decay": (False, True), "maximize": (False, True),
                  "initial_scale": (0.0, 1.0), "ms_init": (0.0, 1.0)}


def random_configurations(preset: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` random native argument sets of ``preset`` (deterministic for a seed): every neutral knob it has
    (decay 1 - 10^U(-3, -0.3), eps 10^U(-9, -2), momentum 0 or U(0.1, 0.95), centered, weight decay 0 or
    10^U(-4, -1), each to three significant digits), the discrete arguments of `_DISCRETE_ARGS` it takes and
    its required ones; draws the preset refuses are drawn again."""
    import inspect
    import zlib

    from reference import implementations
    from reference.errors import InputError

    record = implementations.get(preset)
    accepted = inspect.signature(record.preset).parameters
    rng = np.random.default_rng([seed, zlib.crc32(preset.encode())])
    out: list[dict[str, Any]] = []
    while len(out) < n:
        short = lambda x: float(f"{x:.3g}")  # noqa: E731 - three digits, as people write them
        draws = {"lr": short(10 ** rng.uniform(-3, -1.5)), "decay": short(1 - 10 ** rng.uniform(-3, -0.3)),
                 "eps": short(10 ** rng.uniform(-9, -2)),
                 "momentum": short(rng.uniform(0.1, 0.95)) if rng.random() < 0.5 else 0.0,
                 "centered": bool(rng.random() < 0.5),
                 "weight_decay": short(10 ** rng.uniform(-4, -1)) if rng.random() < 0.5 else 0.0}
        kwargs = dict(record.required)
        for knob, value in draws.items():
            kwargs.update(record.knob_args(knob, value) or {})
        for name, values in _DISCRETE_ARGS.items():
            if name in accepted:
                kwargs[name] = values[int(rng.integers(len(values)))]
        if kwargs.get("centered") and kwargs.get("bias_correction"):
            continue  # the bias-corrected centered variance is 0 at step 1 (v = m^2): ILL_CONDITIONED's case
        try:
            presets.get(preset)(**kwargs)
        except (InputError, ValueError, TypeError):
            continue
        out.append(kwargs)
    return out
