"""`identify` (issue 17, first part): designed probes and a fit name what a black-box RMSprop computes."""

from __future__ import annotations

import numpy as np
import pytest

from reference import init, presets, update
from reference.identify import identify


def _box(spec):
    """The reference itself as a black box: ``factory(params0) -> step(grads, lr) -> params``."""
    def factory(p0):
        state = {"s": init(spec, p0), "p": p0}

        def step(g, lr):
            state["p"], state["s"] = update(spec, state["s"], state["p"], g, lr)
            return state["p"]
        return step
    return factory


def _numpy_rmsprop(alpha=0.99, eps=1e-8, bug=""):
    """A hand-written RMSprop (as a user writes one) with an optional planted bug."""
    def factory(p0):
        state = {"p": p0.copy(), "v": np.full_like(p0, 1.0 if bug == "v0=1" else 0.0)}

        def step(g, lr):
            v = state["v"]
            if bug == "alpha-swapped":
                v[:] = (1 - alpha) * v + alpha * g * g
            else:
                v[:] = alpha * v + (1 - alpha) * g * g
            if bug == "eps-inside":
                den = np.sqrt(v + eps)
            elif bug == "eps2-inside":
                den = np.sqrt(v + eps * eps)
            else:
                den = np.sqrt(v) + eps
            lr_used = float(np.float32(lr)) if bug == "lr-float32" else lr
            state["p"] = state["p"] - lr_used * g / den
            return state["p"]
        return step
    return factory


# each a different form: centered + momentum + coupled decay, v0 = 1 with torch's momentum, decoupled decay with
# TF's, nesterov (plain torch, keras and pfrl were checked the same way when the method was written)
CASES = [("torch", {"momentum": 0.9, "centered": True, "weight_decay": 0.05}), ("sb3", {"momentum": 0.9}),
         ("timm", {"momentum": 0.9, "weight_decay": 0.01, "decoupled_decay": True}),
         ("optax", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True})]


@pytest.mark.slow  # a few seconds each: least squares over every remaining form
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}{k}" for n, k in CASES])
def test_presets_are_identified_as_themselves(name, kwargs) -> None:
    spec = presets.get(name)(**{**presets.REQUIRED_DEFAULTS.get(name, {}), **kwargs}).replace(
        hyperparam_rounding="exact")
    found = identify(_box(spec), prefer=name)
    assert found.reproduces and found.budgets == 0, found.text()
    assert found.spec.effective_knobs() | {"framework": None, "lr": None} == \
        spec.effective_knobs() | {"framework": None, "lr": None} or found.nearest == name, found.text()
    assert found.nearest == name and not found.differences, found.text()


@pytest.mark.slow  # tens of seconds of fitting
def test_a_hand_written_rmsprop_and_its_planted_bugs_are_named() -> None:
    right = identify(_numpy_rmsprop())
    assert right.reproduces and right.nearest == "torch" and not right.differences, right.text()
    inside = identify(_numpy_rmsprop(bug="eps-inside"))
    assert inside.reproduces and inside.spec.eps_placement == "inside" and inside.spec.eps == 1e-8
    v0 = identify(_numpy_rmsprop(bug="v0=1"))
    assert v0.reproduces and v0.spec.initial_accumulator == 1.0 and v0.spec.eps_placement == "outside"
    lr32 = identify(_numpy_rmsprop(bug="lr-float32"))
    assert lr32.reproduces and "the learning rate is rounded to float32" in lr32.text()
    swapped = identify(_numpy_rmsprop(bug="alpha-swapped"))  # v = 0.01 v + 0.99 g^2: an RMSprop with decay 0.01
    assert swapped.reproduces and swapped.spec.decay == pytest.approx(0.01)
    eps2 = identify(_numpy_rmsprop(eps=1e-4, bug="eps2-inside"))  # eps squared inside: eps 1e-8 inside
    assert eps2.reproduces and eps2.spec.eps_placement == "inside" and eps2.spec.eps == pytest.approx(1e-8)


@pytest.mark.slow  # tens of seconds of fitting
def test_what_no_rmsprop_computes_is_said() -> None:
    def adam_like(p0):
        state = {"p": p0.copy(), "m": np.zeros_like(p0), "v": np.zeros_like(p0), "t": 0}

        def step(g, lr):
            state["t"] += 1
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["v"] = 0.999 * state["v"] + 0.001 * g * g
            state["p"] = state["p"] - lr * state["m"] / (np.sqrt(state["v"]) + 1e-8)
            return state["p"]
        return step

    found = identify(adam_like)
    assert not found.reproduces and "NO RMSprop spec reproduces this" in found.text()


@pytest.mark.framework
@pytest.mark.parametrize(("adapter", "kwargs", "module"), [
    ("torch.single", {"momentum": 0.9, "centered": True}, "torch"),
    ("sb3", {"momentum": 0.9}, "stable_baselines3"),
])
def test_real_implementations_are_identified_as_their_presets(adapter, kwargs, module) -> None:
    import importlib.util

    from harness.adapters import ADAPTERS
    from harness.conformance.identify import identify_adapter

    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")
    found, _ = identify_adapter(adapter, kwargs)
    assert found.reproduces and found.nearest == ADAPTERS[adapter].preset and not found.differences, found.text()


@pytest.mark.framework
def test_float32_attributes_and_ignored_arguments_are_found_without_prior_knowledge() -> None:
    """Paddle's rho and epsilon in float32 for float64 parameters, and bitsandbytes' ignored momentum, found
    by the probe alone (docs/findings.md)."""
    import importlib.util

    from harness.conformance.identify import identify_adapter

    if importlib.util.find_spec("paddle") is not None:
        found, _ = identify_adapter("paddle", {"learning_rate": 0.01, "centered": True})
        assert found.reproduces and "decay is 0.95 rounded to float32" in found.text(), found.text()
    if importlib.util.find_spec("bitsandbytes") is not None:
        assert identify_adapter("bnb.32bit", {"lr": 0.01, "momentum": 0.9}, audit={})[1] == ["momentum=0.9"]
        assert identify_adapter("torch.single", {"lr": 0.01, "momentum": 0.9}, audit={})[1] == []  # not vacuous


@pytest.mark.slow  # tens of seconds of fitting
def test_a_recording_of_a_training_loop_is_identified(tmp_path) -> None:
    """identify --recording: a small model trained with the reference (torch's form with momentum), recorded
    with `Recorder` in three lines, named as torch's RMSprop with its values."""
    from harness.base.recordings import Recorder
    from harness.cli import main

    rng = np.random.default_rng(0)
    w = {"w": rng.normal(size=(8, 4)), "b": np.zeros(4)}
    x, y = rng.normal(size=(32, 8)), rng.normal(size=(32, 4))
    spec = presets.torch(lr=0.01, alpha=0.9, momentum=0.5)
    state = init(spec, w)
    rec = Recorder(w)
    for _ in range(48):
        err = x @ w["w"] + w["b"] - y  # a least-squares model: its gradients follow the parameters
        grads = {"w": x.T @ err / len(x), "b": err.mean(axis=0)}
        w, state = update(spec, state, w, grads)
        rec.step(grads, w, 0.01)
    path = rec.save(tmp_path / "run.npz")
    from harness.conformance.identify import identify_recording

    found = identify_recording(str(path))
    assert found.reproduces and found.nearest == "torch" and found.spec.momentum == 0.5, found.text()
    assert found.spec.decay == 0.9 and found.spec.eps_placement == "outside"
    assert main(["identify", "--recording", str(path), "--dry-run"]) == 0
