"""Cross-framework parity and its attribution (reference only: no framework needed)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.parity import PARITY_PRESETS, ParityError, Runner, Scenario, compare, differing_knobs, parity, toggle
from harness.suite import SuiteError, load_suite
from reference import presets


@pytest.fixture(scope="module")
def defaults():
    return parity(Scenario("defaults"))


def _rows(result, a, b):
    attr = result.attribution
    return attr[(attr["a"] == a) & (attr["b"] == b)].set_index("label")


def test_torch_vs_keras_defaults_names_lr_decay_eps_and_placement_with_measured_shares(defaults) -> None:
    rows = _rows(defaults, "torch", "keras")
    for label in ("default lr", "default decay", "default eps", "eps placement", "float32 hyperparameters"):
        assert label in rows.index, rows.index.tolist()
        assert rows.loc[label, "alone"] > 0 and np.isfinite(rows.loc[label, "share"])
        assert rows.loc[label, "without"] > 0
    # what each knob does alone is measured, not apportioned: the defaults' lr (10x) dominates,
    # eps placement is ~1e-3, Keras' float32 lr is at float32 rounding level
    assert rows.loc["default lr", "alone"] > 0.5
    assert 1e-4 < rows.loc["eps placement", "alone"] < 1e-2
    assert rows.loc["float32 hyperparameters", "alone"] < 1e-6
    assert rows.loc["default lr", "share"] > rows.loc["eps placement", "share"]
    # matching every listed knob leaves nothing: the list is complete
    assert rows.loc["all of the above", "without_verdict"] in ("identical", "rounding")
    assert rows.loc["default lr", "value_a"] == "0.01" and rows.loc["default lr", "value_b"] == "0.001"


def test_every_attribution_is_complete_and_pairs_are_symmetric_in_presets(defaults) -> None:
    pairs = defaults.pairs
    n = len(PARITY_PRESETS)
    assert len(pairs) == n * (n - 1) // 2
    done = defaults.attribution[defaults.attribution["knob"] == "*"]
    assert set(done["without_verdict"]) <= {"identical", "rounding"}
    diverging = pairs[pairs["verdict"] != "identical"]
    assert len(done) == len(diverging)
    # the Keras 3 backends and tf_keras share semantics without weight decay: bitwise identical
    same = pairs[pairs["a"].isin(["keras", "keras_jax"]) & pairs["b"].isin(["keras_jax", "keras_torch", "tf_keras"])]
    assert set(same["verdict"]) == {"identical"}


def test_copied_settings_leave_eps_defaults_and_placement(defaults) -> None:
    result = parity(Scenario("same", {"lr": 1e-3, "decay": 0.9, "momentum": 0.9}))
    rows = _rows(result, "torch", "optax")
    assert set(rows.index) == {"lr placement", "eps placement", "all of the above"}
    assert rows.loc["eps placement", "share"] == pytest.approx(1.0, abs=1e-6)
    assert rows.loc["lr placement", "alone"] < 1e-12  # a constant lr: after or in the buffer is the same
    pair = result.pairs.set_index(["a", "b"]).loc[("keras", "tf_keras_legacy")]
    assert pair["verdict"] == "below float32"  # only the legacy optimizer's float32 decay and momentum


def test_a_schedule_makes_lr_placement_matter() -> None:
    lrs = tuple(np.linspace(1e-4, 1e-2, 100))
    result = parity(Scenario("sched", {"lr": 1e-3, "decay": 0.9, "eps": 1e-8, "momentum": 0.9},
                             ("torch", "optax"), steps=100, lrs=lrs))
    rows = _rows(result, "torch", "optax")
    assert rows.loc["lr placement", "alone"] > 1e-2 and rows.loc["lr placement", "share"] > 0.99


def test_compare_verdicts() -> None:
    scenario = Scenario("v", presets=("torch", "optax"), steps=50)
    runner = Runner(scenario)
    torch = presets.torch(lr=0.01)
    optax = presets.optax(0.01, decay=0.99, eps_in_sqrt=False)
    assert compare(runner.run(torch), runner.run(optax), torch, optax, 50)["verdict"] == "identical"
    perturbed = torch.replace(lr=0.01 * (1 + 2**-52))  # one float64 ulp of lr
    assert compare(runner.run(torch), runner.run(perturbed), torch, perturbed, 50)["verdict"] == "rounding"
    f32 = torch.replace(hyperparam_rounding={"lr"})
    assert compare(runner.run(torch), runner.run(f32), torch, f32, 50)["verdict"] == "below float32"
    other = torch.replace(eps=1e-3)
    m = compare(runner.run(torch), runner.run(other), torch, other, 50)
    assert m["verdict"] == "diverges" and 0 < m["divergence"] < 1


def test_toggle_moves_one_knob() -> None:
    legacy = presets.tf_keras_legacy()  # eps outside (momentum 0) by the legacy switch
    keras = presets.keras()
    assert differing_knobs(legacy, keras) == ["hyperparam_rounding", "effective_eps_placement"]
    moved = toggle(legacy, keras, ["effective_eps_placement"])
    assert moved.effective_eps_placement == "inside" and not moved.legacy_eps_switch
    assert differing_knobs(moved, keras) == ["hyperparam_rounding"]
    # momentum alone on the legacy optimizer must not move eps too
    m = toggle(legacy, presets.keras(momentum=0.9), ["momentum"])
    assert m.momentum == 0.9 and m.effective_eps_placement == "outside"


def test_weight_decay_needs_a_framework_that_has_it() -> None:
    result = parity(Scenario("wd", {"lr": 1e-3, "weight_decay": 1e-2}))
    assert set(result.skipped["wd"]) == {"tf_keras_legacy", "tf1", "optax"}
    assert "weight_decay" in result.skipped["wd"]["tf1"]
    rows = _rows(result, "torch", "keras")
    assert "weight decay mode" in rows.index  # coupled L2 vs decoupled decay


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"settings": {"alpha": 0.9}}, "unknown setting 'alpha'"),
    ({"presets": ("torch", "pytorch")}, "unknown preset 'pytorch'"),
    ({"presets": ("torch",)}, "needs at least two presets"),
    ({"lrs": (0.1,), "steps": 5}, "1 scheduled lrs for 5 steps"),
])
def test_bad_scenarios(kwargs, message) -> None:
    with pytest.raises(ParityError, match=message):
        Scenario("bad", **kwargs)


def test_suites_declare_parity_scenarios(tmp_path) -> None:
    default = load_suite("default")
    assert [s.name for s in default.parity] == ["framework-defaults", "same-settings", "same-settings-scheduled"]
    assert default.parity[2].lrs is not None and len(default.parity[2].lrs) == default.parity[2].steps
    seed = load_suite("seed").parity[0]
    assert seed.stream.kind == "recorded" and seed.steps == 100 and dict(seed.shapes) == {"weight": (2, 3),
                                                                                            "bias": (2,)}
    base = "[[case]]\nname = 'a'\n"
    for body, message in [
        ("[[parity]]\nsetings = {lr = 1}\n", "parity[0].setings: unknown key; did you mean 'settings'?"),
        ("[[parity]]\nsettings = {alpha = 0.9}\n", "parity[0]: parity 'parity0': unknown setting 'alpha'"),
        ("[[parity]]\npresets = ['torch', 'mxnet']\n", "unknown preset 'mxnet'"),
        ("[[parity]]\nsettings = {lr = -1.0}\n", "lr=-1.0 is invalid"),
        ("[[parity]]\nsteps = 0\n", "parity[0].steps: expected an integer >= 1"),
        ("[[parity]]\nname = 'x'\n[[parity]]\nname = 'x'\n", "parity[1].name: expected a unique name"),
    ]:
        path = tmp_path / "p.toml"
        path.write_text(base + body)
        with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")):
            load_suite(path)
