"""Closed-loop training (harness.training): workloads, the analysis, suites, the command; then real frameworks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.base import runfolder
from harness.cli import main
from harness.conformance.suite import SuiteError, load_suite
from harness.training import analysis, plan, workloads
from harness.training.runner import TrainSpec, run_training
from harness.training.worker import perturbed
from reference.errors import InputError


# ------------------------------------------------------------------ no framework
def test_workloads_are_defined_once_and_deterministic():
    for w in workloads.WORKLOADS.values():
        a, b = w.init(), w.init()
        assert list(a) == list(w.shapes) and all(a[n].shape == tuple(s) for n, s in w.shapes.items())
        assert all(np.array_equal(a[n], b[n]) for n in a)
        x, y = w.data()
        batches = w.batches(w.steps, len(x))
        assert len(batches) == w.steps
        if w.batch is not None:
            assert all(len(i) == w.batch for i in batches) and len(set(batches[0]) & set(batches[1])) == 0
    x, y = workloads.get("mlp").data()
    assert x.shape == (1797, 64) and sorted(set(y)) == list(range(10)) and x.max() == 1.0
    seed = workloads.get("seed").init()
    assert seed["kernel"].shape == (3, 2)  # torch's (2, 3) weight, transposed to the canonical (in, out)
    assert workloads.log_steps(100)[:4] == [0, 1, 2, 3] and workloads.log_steps(100)[-1] == 100


def test_a_floor_run_starts_exactly_one_ulp_away():
    p = {"w": np.array([1.0, -2.5, 3e-3]), "b": np.zeros(2)}
    for dtype in ("float32", "float64"):
        q = perturbed({n: np.asarray(v, dtype).astype(np.float64) for n, v in p.items()}, dtype, 0)
        for n in p:
            ulps = np.abs(q[n].astype(dtype).view(np.int32 if dtype == "float32" else np.int64)
                          - np.asarray(p[n], dtype).view(np.int32 if dtype == "float32" else np.int64))
            assert np.all((ulps == 1) | (p[n] == 0))
            assert np.all(q[n] != p[n])


def _result(params: np.ndarray, loss: float) -> analysis.Result:
    steps = workloads.log_steps(4)
    trajectory = np.stack([params * (1 + 0.1 * k) for k in range(len(steps))])
    evals = np.array([[loss * (1 + k), math.nan] for k in range(len(steps))])
    return analysis.Result("done", "", np.ones(4), np.ones(4), evals, trajectory)


def test_the_attribution_telescopes_to_the_total():
    w = workloads.get("seed")
    p = plan.make_plan(w, "defaults", ["torch", "optax"], "torch")
    rng = np.random.default_rng(0)
    results = {r.id: _result(rng.standard_normal(w.size), float(rng.uniform(0.1, 1)))
               for runs in p.runs.values() for r in runs}
    rows = analysis.attribution_rows(p, "float32", results)
    assert [r["category"] for r in rows] == ["numerics", "optimizer", "dynamics", "numerics", "numerics"]
    total = rows[0]["total_loss_gap"]
    assert math.isclose(sum(r["loss_delta"] for r in rows), total, rel_tol=1e-12)
    assert math.isclose(sum(r["loss_share"] for r in rows), 1.0, rel_tol=1e-12)
    assert math.isclose(sum(r["distance_part"] for r in rows), rows[0]["total_distance"], rel_tol=1e-9)
    pairs, curves = analysis.pair_rows(p, "float32", 4, results, rows)
    assert len(pairs) == 1 and pairs[0]["verdict"] in ("diverged", "rounding level")
    knobs = analysis.knob_rows(p, "float32", results, rows)  # torch vs optax: lr, decay, eps placement
    assert [k["knob"] for k in knobs] == ["lr", "decay", "eps placement"]
    semantic = sum(r["loss_delta"] for r in rows if r["category"] in ("optimizer", "dynamics"))
    assert math.isclose(sum(k["shapley_loss"] for k in knobs), semantic, rel_tol=1e-9)
    from harness.base import schema
    from harness.report.training import headlines, markdown_section

    tables = analysis.frames({"training_runs": analysis.run_rows(p, "float32", 4, results)[0],
                              "training_pairs": pairs, "training_attribution": rows, "training_knobs": knobs},
                             {n: schema.COLUMNS[n] for n in schema.TRAINING_TABLES})
    [line] = headlines(tables, ("seed", "defaults", "float32"))
    assert line.startswith("optax ends at loss") and "by knob: " in line
    assert "## Closed-loop training" in "\n".join(markdown_section(tables))
    assert {c["kind"] for c in curves} == {"pair", "floor"}


def test_verdicts_never_pass_what_did_not_train():
    terms = [{"category": "optimizer", "distance_alone": 1e-3}, {"category": "numerics", "distance_alone": 1e-6}]
    assert analysis.verdict(1.0, terms, moved=True, finite=True) == "diverged"
    assert analysis.verdict(1e-6, terms[1:], moved=True, finite=True) == "rounding level"
    assert analysis.verdict(0.0, terms, moved=False, finite=True) == "degenerate"
    assert analysis.verdict(0.0, terms, moved=True, finite=False) == "nonfinite"
    assert analysis.verdict(0.0, terms, moved=True, finite=True) == "identical"
    assert analysis.verdict(1e-9, [], moved=True, finite=True) == "unattributed"
    steps = [0, 1, 2, 4, 8]
    assert analysis.growth(steps, np.array([0, 1e-8, 2e-8, 4e-8, 8e-8])) == pytest.approx(math.log(8) / 7)
    assert math.isnan(analysis.growth(steps, np.zeros(5)))


def test_settings_give_each_framework_its_own_arguments():
    w = workloads.get("seed")
    same = plan.make_plan(w, "same", ["torch", "keras.jax", "optax"], "torch")
    assert same.args["torch"] == {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}
    assert same.args["keras.jax"] == {"learning_rate": 0.01, "rho": 0.99, "epsilon": 1e-8}
    translated = plan.make_plan(w, "translated", ["torch", "optax"], "torch")
    assert translated.args["optax"]["learning_rate"] == 0.01 and translated.args["optax"]["decay"] == 0.99
    assert plan.make_plan(w, "defaults", ["optax"], "optax").args["optax"] == {"learning_rate": 0.001}
    kinds = [r.kind for r in translated.runs["torch"]]
    assert kinds == ["native", "floor", "reference", "reference", "open"]


@pytest.mark.parametrize("spec, message", [
    (TrainSpec(workloads=("nosuch",)), "unknown workload 'nosuch'"),
    (TrainSpec(frameworks=("torhc",)), "unknown framework 'torhc'"),
    (TrainSpec(settings=("own",)), "unknown settings 'own'"),
    (TrainSpec(dtypes=("float16",)), "not 'float16'"),
    (TrainSpec(steps=0), "steps"),
])
def test_bad_training_input_is_one_line(spec, message):
    with pytest.raises(InputError, match=message):
        run_training([spec])


def test_train_tables_in_suites(tmp_path: Path):
    suite = load_suite("closed-loop")
    assert not suite.cases and suite.train[0].workloads == ("seed",)
    assert any(t.name == "closed-loop" for t in load_suite("default").train)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[train]]\nworkload = ["seed"]\n')
    with pytest.raises(SuiteError, match=r"train\[0\]\.workload: unknown key; did you mean 'workloads'\?"):
        load_suite(bad)
    bad.write_text('[[train]]\nworkloads = ["seed"]\nsettings = ["mine"]\n')
    with pytest.raises(SuiteError, match="unknown settings 'mine'"):
        load_suite(bad)


@pytest.mark.parametrize("args, message", [
    (["--set", "nosuch=1"], "--set nosuch: not a neutral knob"),
    (["--set", "lr=-1"], "lr=-1.0 is invalid"),
    (["--base", "torhc"], "unknown framework 'torhc'"),
    (["--jobs", "0"], "--jobs must be between 1 and 64"),
    (["--dtype", "int8"], "not 'int8'"),
    (["--steps", "-5"], "steps"),
])
def test_train_options_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, args, message):
    out = tmp_path / "o"
    assert main(["train", "--settings", "same", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_train_dry_run_shows_each_frameworks_arguments_and_writes_nothing(tmp_path: Path, capsys):
    out = tmp_path / "o"
    assert main(["train", "--workload", "mlp", "--frameworks", "torch,optax", "--base", "optax", "--settings",
                 "same", "--set", "decay=0.95", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "optax: optax({'learning_rate': 0.001, 'decay': 0.95, 'eps': 1e-08})" in text  # optax's defaults, lr, --set
    assert "torch: torch({'lr': 0.001, 'alpha': 0.95, 'eps': 1e-08})" in text
    assert "optax vs torch: 1 differing knobs" in text and "nothing was written" in text and not out.exists()


@pytest.mark.parametrize("table, message", [
    ("steps = 1.5", "train[0].steps: expected an integer"),
    ("set = 3", "train[0].set: expected a table of neutral knobs"),
    ("timeout = 0", "train[0].timeout: expected seconds > 0"),
    ("workloads = []", "train[0].workloads: expected a non-empty list of strings"),
    ("dtypes = [\"float16\"]", "not 'float16'"),
])
def test_bad_train_tables_name_the_key(tmp_path: Path, table, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[[train]]\n{table}\n")
    with pytest.raises(SuiteError) as info:
        load_suite(bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_train_command_bad_input_exits_2(tmp_path: Path, capsys):
    assert main(["train", "--workload", "nosuch", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown workload 'nosuch'" in err[0]
    assert not (tmp_path / "o").exists()
    # a training-only suite with its training skipped runs nothing: refused, never an empty PASS
    assert main(["run", "--suite", "closed-loop", "--no-train", "--out", str(tmp_path / "o")]) == 2
    assert "it only trains" in capsys.readouterr().err and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ real frameworks
FIVE = ("torch", "keras.tensorflow", "keras.jax", "keras.torch", "optax")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training run shared by the tests below (each framework's worker starts once): the seed model
    with defaults in float32 and translated settings in float64, and the digits MLP for 60 steps. (tf_keras and
    TF1 train the seed model in the default suite, which CI runs.)"""
    from harness.report import write_report
    from harness.training.runner import train_to_folder

    out = tmp_path_factory.mktemp("train") / "run"
    specs = [TrainSpec(name="seed", workloads=("seed",), frameworks=FIVE, settings=("defaults",)),
             TrainSpec(name="seed64", workloads=("seed",), frameworks=("torch", "optax", "keras.jax"),
                       settings=("translated",), dtypes=("float64",)),
             TrainSpec(name="mlp", workloads=("mlp",), frameworks=FIVE, settings=("translated",), steps=60)]
    result, folder = train_to_folder(specs, out)
    write_report(folder)
    return result, folder


def _one(frame: pd.DataFrame, **where) -> pd.DataFrame:
    for column, value in where.items():
        frame = frame[frame[column] == value]
    return frame


@pytest.mark.framework
@pytest.mark.slow
def test_seed_and_mlp_train_natively_from_bit_identical_weights(trained):
    result, out = trained
    assert not result.failed
    runs = runfolder.read_parquet(out / "training_runs.parquet")
    native = runs[runs["run"] == "native"]
    assert set(FIVE) <= set(native["trainer"]) and set(native["workload"]) == {"seed", "mlp"}
    assert (runs["status"] == "done").all() and runs["init_exact"].all()  # float64 floor runs included
    mlp = native[native["workload"] == "mlp"]
    assert sorted(mlp["trainer"]) == sorted(FIVE) and (mlp["final_accuracy"] > 0.5).all()  # 60 steps learn digits
    steps = runfolder.read_parquet(out / "training.parquet")
    first = _one(steps, step=0, run="native", workload="mlp")
    assert len(first) == 5 and len({tuple(p) for p in first["params"]}) == 1  # read back from each framework
    html = (out / "report.html").read_text()
    assert "Closed-loop training" in html and 'alt="loss curves mlp, translated settings, float32"' in html
    pairs = runfolder.read_parquet(out / "training_pairs.parquet")
    assert len(_one(pairs, workload="mlp")) == 10  # every pair of five frameworks
    assert "ends at loss" in (out / "report.md").read_text()


@pytest.mark.framework
@pytest.mark.slow
def test_torch_and_optax_in_float64_closed_loop_stay_at_rounding_level(trained):
    tables = trained[0].tables
    pair = _one(tables["training_pairs"], workload="seed", settings="translated", dtype="float64", a="torch",
                b="optax").iloc[0]
    assert pair["verdict"] in ("identical", "rounding level"), pair.to_dict()
    assert pair["relative"] < 1e-12
    attr = _one(tables["training_attribution"], workload="seed", settings="translated", dtype="float64", b="optax")
    assert len(attr) == 5 and (attr[attr["category"] != "numerics"]["distance_alone"] == 0).all()  # same semantics


@pytest.mark.framework
@pytest.mark.slow
def test_torch_and_keras_defaults_divergence_is_attributed_and_sums_to_the_total(trained):
    tables = trained[0].tables
    key = {"workload": "seed", "settings": "defaults", "dtype": "float32"}
    pair = _one(tables["training_pairs"], **key, a="torch", b="keras.tensorflow").iloc[0]
    assert pair["verdict"] == "diverged" and pair["loss_b"] > pair["loss_a"]  # Keras' lr 1e-3 vs torch's 1e-2
    attr = _one(tables["training_attribution"], **key, b="keras.tensorflow")
    assert math.isclose(attr["loss_delta"].sum(), pair["loss_b"] - pair["loss_a"], rel_tol=1e-9)
    assert math.isclose(attr["distance_part"].sum(), pair["distance"], rel_tol=1e-6)
    by = attr.groupby("category")["distance_part"].sum()
    assert by["optimizer"] + by["dynamics"] > 0.99 * pair["distance"]
    knobs = _one(tables["training_knobs"], **key, b="keras.tensorflow").set_index("knob")
    assert knobs["loss_share"].idxmax() == "lr" and knobs.loc["lr", "loss_share"] > 0.8


@pytest.mark.framework
@pytest.mark.slow
def test_the_same_command_twice_gives_bit_identical_tables(tmp_path: Path):
    args = ["train", "--workload", "seed,conv", "--frameworks", "torch,keras.jax,optax", "--settings", "same",
            "--steps", "12", "--no-report"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    for table in ("training_runs", "training", "training_pairs", "training_divergence", "training_attribution"):
        a = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{table}.parquet").read_bytes(), table
    assert not pd.read_parquet(tmp_path / "a" / "training.parquet").empty


@pytest.mark.framework
@pytest.mark.slow
def test_the_clones_and_other_libraries_train_the_seed_model():
    names = ("torch", "timm", "sb3", "pfrl", "jax_example")
    result = run_training([TrainSpec(workloads=("seed",), frameworks=names, settings=("same",))])
    assert not result.failed
    assert set(result.seconds) == {"torch+timm+sb3+pfrl", "jax_example"}  # one worker per environment
    runs = result.tables["training_runs"]
    native = runs[runs["run"] == "native"].set_index("trainer")
    assert set(native.index) == set(names) and (native["status"] == "done").all()
    steps = result.tables["training"]
    first = steps[(steps["run"] == "native") & (steps["step"] == 1)].set_index("trainer")["loss"]
    assert (native["final_loss"] < first.loc[native.index]).all()  # every one of them trains
    knobs, attr = result.tables["training_knobs"], result.tables["training_attribution"]
    pfrl = knobs[knobs["b"] == "pfrl"]  # pfrl's RMSpropEpsInsideSqrt: the one knob is all of the semantic part
    semantic = attr[(attr["b"] == "pfrl") & attr["category"].isin(["optimizer", "dynamics"])]["loss_delta"].sum()
    assert list(pfrl["knob"]) == ["eps placement"] and pfrl["shapley_loss"].iloc[0] == pytest.approx(semantic)
