"""Cross-framework parity and its attribution (reference only: no framework needed)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.base.streams import StreamSpec
from harness.compare.attribution import differing_knobs, toggle
from harness.compare.parity import PARITY_PRESETS, ParityError, Runner, Scenario, compare, parity
from harness.conformance.suite import SuiteError, load_suite
from reference import presets


@pytest.fixture(scope="module")
def defaults():
    """Every framework's defaults on N(0, 1) gradients only (the sweep is tested below)."""
    return parity(Scenario("defaults", scales="none"))


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
    # Shapley shares add up to the whole divergence, with what is left once every knob matches
    assert rows["share"].sum() == pytest.approx(1.0, abs=1e-9)
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
    result = parity(Scenario("same", {"lr": 1e-3, "decay": 0.9, "momentum": 0.9}, scales="none"))
    rows = _rows(result, "torch", "optax")
    assert set(rows.index) == {"lr placement", "eps placement", "all of the above"}
    assert rows.loc["eps placement", "share"] == pytest.approx(1.0, abs=1e-6)
    assert rows.loc["lr placement", "alone"] < 1e-12  # a constant lr: after or in the buffer is the same
    pair = result.pairs.set_index(["a", "b"]).loc[("keras", "tf_keras_legacy")]
    assert pair["verdict"] == "below float32"  # only the legacy optimizer's float32 decay and momentum


def test_a_schedule_makes_lr_placement_matter() -> None:
    lrs = tuple(np.linspace(1e-4, 1e-2, 100))
    result = parity(Scenario("sched", {"lr": 1e-3, "decay": 0.9, "eps": 1e-8, "momentum": 0.9},
                             ("torch", "optax"), steps=100, lrs=lrs, scales="none"))
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
    assert m["verdict"] == "moderate" and 1e-3 < m["divergence"] < 0.1  # graded, not one word for everything
    far = torch.replace(eps=1.0)
    assert compare(runner.run(torch), runner.run(far), torch, far, 50)["verdict"] == "large"


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
    result = parity(Scenario("wd", {"lr": 1e-3, "weight_decay": 1e-2}, scales="none"))
    assert set(result.skipped["wd"]) == {"tf_keras_legacy", "tf1", "optax", "jax_example", "mlx", "keras2"}
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


# ------------------------------------------------------------- the user's gradient scale (issue 14, section 3)
def test_the_verdict_is_the_worst_gradient_scale_not_the_friendliest() -> None:
    """torch vs Keras with lr and decay copied: 0.00076 on N(0, 1) gradients, 0.53 at 1e-3 and 0.92 at 1e-4
    (eps placement dominates small gradients); the pair's verdict is the worst scale's."""
    result = parity(Scenario("copied", {"lr": 1e-3, "decay": 0.9}, ("torch", "keras")))
    sweep = result.sweep.set_index("scale")
    assert len(sweep) == 9 and sweep.index.min() == 1e-6 and sweep.index.max() == 1e2
    assert sweep.loc[1.0, "divergence"] == pytest.approx(7.6e-4, rel=0.05)
    assert sweep.loc[1e-3, "divergence"] == pytest.approx(0.525, rel=0.02)
    assert sweep.loc[1e-4, "divergence"] == pytest.approx(0.92, rel=0.02)
    (pair,) = result.pairs.itertuples()
    assert pair.verdict == "large" and pair.divergence > 0.9 and pair.scale <= 1e-4 and pair.n_scales == 9
    assert pair.divergence == result.sweep["divergence"].max()


def test_a_stated_scale_or_recording_is_not_swept_and_any_stream_works(tmp_path) -> None:
    from harness.base.streams import GradientStream, record

    fixed = Scenario("f", {"lr": 1e-3, "decay": 0.9}, ("torch", "keras"), StreamSpec("gaussian", 0, {"scale": 1e-4}))
    assert fixed.scale_list() == (1.0,)
    result = parity(fixed)
    assert result.pairs["divergence"].iloc[0] == pytest.approx(0.92, rel=0.05)
    grads = GradientStream(StreamSpec("lognormal", 3), {"w": (4, 3)})
    path = record(tmp_path / "g.npz", {"w": np.stack([grads.step(t)["w"] for t in range(1, 31)])})
    recorded = Scenario("r", {}, ("torch", "optax"), StreamSpec("recorded", 0, {"path": str(path)}), {"w": (4, 3)},
                        steps=30)
    assert recorded.scale_list() == (1.0,) and len(parity(recorded).pairs) == 1
    assert Scenario("s", scales=(1e-3, 1.0)).scale_list() == (1e-3, 1.0)


def test_nothing_moving_is_degenerate_never_identical() -> None:
    tiny = parity(Scenario("tiny", {"lr": 1e-3}, ("torch", "keras", "optax"), StreamSpec("tiny")))
    assert set(tiny.pairs["verdict"]) == {"degenerate"} and tiny.attribution.empty
    zeros = parity(Scenario("zeros", {}, ("torch", "keras"), StreamSpec("zeros")))
    assert zeros.pairs["verdict"].tolist() == ["degenerate"]
    # one side moving is a real difference, not a degenerate one
    r = Runner(Scenario("v", presets=("torch", "optax"), steps=20))
    still = presets.torch(lr=0.0)
    moving = presets.torch(lr=0.01)
    assert compare(r.run(still), r.run(moving), still, moving, 20)["verdict"] == "unrelated"


def test_verdicts_are_graded_by_divergence() -> None:
    from harness.compare.parity import grade

    assert [grade(d) for d in (7e-5, 5e-3, 0.5, 3.0)] == ["slight", "moderate", "large", "unrelated"]


def test_shapley_shares_add_up_to_each_pairs_divergence_and_interactions_are_shown() -> None:
    result = parity(Scenario("defaults"))
    attr = result.attribution
    totals = attr.groupby(["a", "b"])["share"].sum()
    assert len(totals) > 10 and np.allclose(totals, 1.0, atol=1e-9), totals
    shapley = attr[attr["knob"] != "*"].groupby(["a", "b"])["shapley"].sum()
    residual = attr[attr["knob"] == "*"].set_index(["a", "b"])["without"]
    withs = attr.groupby(["a", "b"])["with"].first()
    assert np.allclose(shapley + residual, withs)
    assert set(result.interactions.columns) >= {"knob_a", "knob_b", "interaction", "share"}
    # eps placement and the lr interact for torch vs keras defaults: their effects are not additive
    pair = result.interactions[(result.interactions["a"] == "torch") & (result.interactions["b"] == "keras")]
    assert len(pair) and (pair["interaction"].abs() > 0).all()


def test_shapley_is_exact_for_an_additive_game_and_sampled_beyond_eight_players() -> None:
    from harness.compare.attribution import shapley

    weights = [0.5, 0.25, 0.125]
    phi, inter, exact = shapley(3, lambda s: sum(weights[i] for i in s))
    assert exact and np.allclose(phi, weights) and np.allclose(list(inter.values()), 0.0)
    phi, inter, exact = shapley(3, lambda s: 1.0 if {0, 1} <= s else 0.0)  # a pure interaction of 0 and 1
    assert np.allclose(phi, [0.5, 0.5, 0.0]) and inter[(0, 1)] == pytest.approx(1.0)
    phi, _, exact = shapley(10, lambda s: float(len(s)))
    assert not exact and np.allclose(phi, 1.0)
