"""`rmsprop-harness translate`: verified translations, impossible ones, and the round trip through
the real frameworks (the claims the command prints must hold for torch and optax themselves)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.base.streams import StreamSpec
from harness.cli import main
from harness.compare.parity import Scenario
from harness.compare.translate import TranslateError, translate
from reference import presets, run_reference
from reference.budget import UNIT_ROUNDOFF, budget_scale, run_tolerance

from .configs import Config, gradient_stream, model_params, run_frameworks

TORCH = {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}


def test_torch_to_optax_is_exact_and_names_the_arguments_that_matter() -> None:
    t = translate("torch", TORCH, "optax")
    assert t.status == "exact" and t.divergence["verdict"] == "identical"
    assert t.args == {"learning_rate": 0.01, "decay": 0.99, "eps_in_sqrt": False}
    assert t.call == "optax.rmsprop(learning_rate=0.01, decay=0.99, eps_in_sqrt=False)"


def test_lr_placement_is_equivalent_only_for_a_constant_lr() -> None:
    t = translate("torch", {**TORCH, "momentum": 0.9}, "optax")
    assert t.status == "equivalent" and [i["knob"] for i in t.lacking] == ["lr_placement"]
    assert t.divergence["verdict"] == "rounding"
    assert any("under a schedule lr placement matters" in n for n in t.notes)


def test_impossible_translation_says_so_and_measures_the_closest() -> None:
    t = translate("torch", TORCH, "keras")
    assert t.status == "closest" and not t.ok
    assert t.lacking == [{"knob": "eps_placement", "wanted": "outside", "got": "inside"}]
    # the eps that replaces sqrt(v) + eps best is measured among candidates, and the best one wins
    assert [c[0] for c in t.eps_candidates] == [1e-8, 1e-16, 2e-8]
    best = min(t.eps_candidates, key=lambda c: c[1])
    assert t.args["epsilon"] == best[0] and t.divergence["divergence"] == pytest.approx(best[1])
    labels = {r["label"]: r for r in t.attribution}
    assert "eps placement + eps" in labels and labels["all of the above"]["without_verdict"] == "identical"


def test_tf1_accumulator_cannot_be_translated_away() -> None:
    t = translate("torch", {"lr": 0.01}, "tf1")
    assert t.status == "closest" and {i["knob"] for i in t.lacking} == {"eps_placement", "initial_accumulator"}
    assert t.divergence["verdict"] in ("large", "unrelated") and t.divergence["divergence"] > 0.5
    assert {r["label"]: r["share"] for r in t.attribution}["initial accumulator"] > 0.9


def test_float32_hyperparameters_are_reported_not_hidden() -> None:
    t = translate("keras", {}, "optax")  # same mathematics, but Keras keeps the lr in float32
    assert t.status == "closest" and not t.lacking
    assert t.divergence["verdict"] == "below float32"
    assert [r["label"] for r in t.attribution] == ["float32 hyperparameters", "all of the above"]
    exact = translate("keras", {"learning_rate": 2.0**-10}, "optax")  # representable in float32
    assert exact.status == "exact"


def test_translation_errors() -> None:
    with pytest.raises(TranslateError, match="unknown framework 'mxnet'"):
        translate("mxnet", {}, "optax")
    with pytest.raises(TranslateError, match="unexpected keyword"):
        translate("torch", {"alph": 0.9}, "optax")
    with pytest.raises(TranslateError, match=r"no clipnorm=1\.0 and no closest setting"):
        translate("keras", {"clipnorm": 1.0}, "torch")


# ------------------------------------------------------------------ real frameworks
PARAMS = model_params(3)
GRADS = gradient_stream(PARAMS, steps=40, seed=4)
ARRAYS = Scenario("arrays", presets=("torch", "optax"), stream=StreamSpec("arrays", options={"grads": GRADS,
                                                                                               "params": PARAMS}),
                  steps=40)


def _final(results: dict, cfg: Config) -> np.ndarray:
    res = results[cfg.id]
    if "params" not in res:
        pytest.skip(res.get("skipped") or res.get("error"))
    return np.concatenate([res["params"][n][-1].ravel() for n in PARAMS])


@pytest.mark.framework
def test_round_trip_through_the_real_frameworks() -> None:
    """torch -> optax: both frameworks on the same stream agree at float64 rounding level; torch -> keras
    (impossible): the real frameworks diverge by what the translation predicted."""
    exact = translate("torch", TORCH, "optax", ARRAYS)
    closest = translate("torch", TORCH, "keras", ARRAYS)
    configs = [Config("torch", TORCH, "torch.single"), Config("optax", exact.args, "optax"),
               Config("keras", closest.args, "keras.tensorflow")]
    results = run_frameworks(configs, PARAMS, GRADS)
    torch, optax = _final(results, configs[0]), _final(results, configs[1])
    ref = run_reference(presets.torch(**TORCH), PARAMS, [{n: g[t] for n, g in GRADS.items()} for t in range(40)])
    scale = np.concatenate([budget_scale(ref[n], PARAMS[n])[-1].ravel() for n in PARAMS])
    budgets = np.max(np.abs(torch - optax) / (UNIT_ROUNDOFF["float64"] * scale))
    assert budgets <= run_tolerance(presets.torch(**TORCH), 40, "float64"), budgets
    keras = _final(results, configs[2])
    p0 = np.concatenate([PARAMS[n].ravel() for n in PARAMS])
    real = np.linalg.norm(keras - torch) / max(np.linalg.norm(keras - p0), np.linalg.norm(torch - p0))
    # the last step's divergence of the real runs matches the prediction (max over steps >= last step)
    assert 0 < real <= closest.divergence["divergence"] * (1 + 1e-6)
    assert real > 0.1 * closest.divergence["divergence"]


# ---------------------------------------------------------------------------- CLI
def test_cli_prints_exact_translation_and_exits_0(capsys) -> None:
    assert main(["translate", "--from", "torch", "lr=0.01", "alpha=0.99", "eps=1e-8", "--to", "optax"]) == 0
    out = capsys.readouterr().out
    assert "torch(lr=0.01, alpha=0.99, eps=1e-08) -> optax: exact" in out
    assert "optax.rmsprop(learning_rate=0.01, decay=0.99, eps_in_sqrt=False)" in out
    assert "verified on 200 steps of gaussian gradients" in out and "identical" in out


def test_cli_impossible_translation_exits_1_and_json(capsys) -> None:
    assert main(["translate", "--to", "keras,optax", "--from", "torch", "lr=0.01", "--steps", "50"]) == 1
    out = capsys.readouterr().out
    assert "-> keras: impossible: keras has no eps_placement='outside'" in out and "closest: keras" in out
    assert main(["translate", "--from", "keras", "--to", "all", "--format", "json", "--stream", "lognormal"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {d["target"] for d in data} == set(presets.PRESETS) - {"keras", "spec"}
    assert {d["target"]: d["status"] for d in data}["keras_jax"] == "exact"


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "pytorch", "--to", "optax"], "unknown preset 'pytorch'"),
    (["--from", "torch", "lr=x", "--to", "optax"], "lr=x is not a Python literal"),
    (["--from", "torch", "--to", "mxnet"], "--to 'mxnet' is not a framework"),
    (["--from", "torch", "--to", "optax", "--stream", "recorded"], "--stream 'recorded' is not a stream kind"),
    (["--from", "torch", "alpha=2", "--to", "optax"], "alpha=2.0 is invalid"),
    (["--from", "torch", "--to", "optax", "--steps", "0"], "steps=0 must be an integer >= 1"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys) -> None:
    assert main(["translate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rmsprop-harness: error: ") and "\n" not in err and message in err, err


def test_parity_cli(capsys) -> None:
    assert main(["parity", "lr=1e-3", "momentum=0.9", "--presets", "torch,optax", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "eps placement" in out and "lr placement" in out
    assert main(["parity", "--presets", "torch,keras", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| torch vs keras | default lr | 0.01 -> 0.001 |" in out
    assert main(["parity", "alpha=0.9"]) == 2
    assert "unknown setting 'alpha'" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 14, section 3: the user's gradient scale
def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


def test_parity_and_translate_take_any_stream_and_judge_the_worst_scale(tmp_path, capsys) -> None:
    from harness.base.streams import GradientStream, record

    assert main(["parity", "lr=1e-3", "decay=0.9", "--presets", "torch,keras", "--format", "json"]) == 0
    data = _json(capsys)
    (pair,) = data["pairs"]
    assert len(data["sweep"]) == 9 and pair["verdict"] == "large" and pair["divergence"] > 0.9 and pair["scale"] <= 1e-4
    assert main(["parity", "lr=1e-3", "decay=0.9", "--presets", "torch,keras", "--stream", "gaussian:scale=1e-4",
                 "--format", "json"]) == 0
    (pair,) = _json(capsys)["pairs"]
    assert pair["n_scales"] == 1 and pair["divergence"] == pytest.approx(0.92, rel=0.02)
    stream = GradientStream(StreamSpec("lognormal", 1), {"w": (3, 2)})
    path = record(tmp_path / "mine.npz", {"w": np.stack([stream.step(t)["w"] for t in range(1, 41)])})
    assert main(["parity", "--presets", "torch,optax", "--stream", str(path), "--format", "json"]) == 0
    (pair,) = _json(capsys)["pairs"]
    assert pair["n_scales"] == 1 and pair["verdict"] not in ("identical", "degenerate")
    assert main(["translate", "--from", "torch", "lr=1e-3", "--to", "keras", "--stream", str(path),
                 "--format", "json"]) == 1
    (t,) = _json(capsys)
    assert t["status"] == "closest"


def test_nothing_moving_is_never_identical_in_parity_or_translate(capsys) -> None:
    assert main(["parity", "--presets", "torch,keras", "--stream", "tiny", "--format", "json"]) == 0
    assert [p["verdict"] for p in _json(capsys)["pairs"]] == ["degenerate"]
    assert main(["translate", "--from", "torch", "lr=1e-3", "--to", "keras", "--stream", "tiny"]) == 1
    out = capsys.readouterr().out
    assert "not verified (degenerate: nothing moves on this stream)" in out and "nothing was verified" in out
    assert main(["translate", "--from", "torch", "lr=1e308", "--to", "optax"]) == 1
    assert "identical" not in capsys.readouterr().out.split("\n")[0]


def test_translate_chooses_eps_for_the_worst_scale() -> None:
    t = translate("torch", TORCH, "keras")
    assert t.scale < 1e-2  # eps placement matters for small gradients: that is where it is judged
    assert t.divergence["divergence"] == min(c[1] for c in t.eps_candidates)


def test_a_quantized_target_is_never_claimed_equal() -> None:
    """float64 references do not model an 8-bit state: translating into bitsandbytes' RMSprop8bit is at best
    'closest', with a note, and its call takes the library's own min_8bit_size."""
    from harness.compare.translate import translate

    t = translate("torch", {"lr": 0.01}, "bitsandbytes_8bit")
    assert t.status == "closest" and t.call == "bitsandbytes.optim.RMSprop8bit(params)"
    assert any("blockwise8" in n and "reference/quantization.py" in n for n in t.notes)
    assert translate("torch", {"lr": 0.01}, "bitsandbytes").status in ("exact", "equivalent")
