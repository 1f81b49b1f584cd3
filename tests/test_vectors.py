"""Golden vectors: exported for every preset, the reference's own outputs pass, a value one step beyond its
tolerance fails with the diagnosis, the three files agree, and a C RMSprop passes the torch vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli
from harness.conformance.vectors import VectorError, unhex
from harness.conformance.vectors_check import check, load_vectors
from reference import implementations

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def every_preset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vectors") / "v"
    assert cli(["vectors", "export", "--preset", "all", "--case", "own-defaults", "--case", "momentum-centered",
                "--steps", "6", "--elements", "8", "--out", str(out)]) == 0
    return out


def _reference_results(vectors, path: Path, change=None) -> Path:
    """The vectors' own expected outputs as an .npz of results; ``change(arrays)`` edits them first."""
    arrays = {f"{v.id}/{k[len('expected/'):]}": v.arrays[k].copy() for v in vectors for k in v.arrays
              if k.startswith("expected/")}
    if change is not None:
        change(arrays)
    np.savez(path, **arrays)
    return path


def test_every_preset_has_vectors_and_its_own_outputs_pass(every_preset: Path, tmp_path: Path) -> None:
    vectors = load_vectors(every_preset)
    assert {v.meta["preset"] for v in vectors} == set(implementations.names())
    assert all(v.meta["start_step"] > 0 for v in vectors)  # a non-initial start
    assert any(np.any(v.arrays[k] != 0) for v in vectors for k in v.arrays if k.startswith("inputs/state/"))
    table = check(every_preset, _reference_results(vectors, tmp_path / "ref.npz"))
    assert len(table) == len(vectors) and (table["status"] == "ok").all(), table[table["status"] != "ok"]


def test_one_value_a_float_beyond_its_tolerance_fails_and_within_passes(every_preset: Path, tmp_path: Path) -> None:
    vectors = load_vectors(every_preset)
    v = next(v for v in vectors if v.meta["preset"] == "torch")
    key = f"{v.id}/params/weight"
    e, tol = v.arrays["expected/params/weight"][3, 1], v.arrays["tolerance/params/weight"][3, 1]
    beyond = e + tol
    while abs(beyond - e) <= tol:  # the first float64 whose distance is over the tolerance
        beyond = np.nextafter(beyond, np.inf)

    def set_to(value):
        return lambda arrays: arrays[key].__setitem__((3, 1), value)

    bad = check(every_preset, _reference_results(vectors, tmp_path / "bad.npz", set_to(beyond)))
    row = bad[bad["id"] == v.id].iloc[0]
    assert row["status"] == "fail", row
    assert f"parameters: 1 tolerances at step {v.meta['start_step'] + 4}" in row["reason"]
    assert "1 of" in row["reason"] and "update rule" in row["reason"]
    assert (bad[bad["id"] != v.id]["status"] == "ok").all()
    near = check(every_preset, _reference_results(vectors, tmp_path / "near.npz", set_to(e + tol / 2)))
    assert (near["status"] == "ok").all()


def test_missing_results_and_wrong_shapes_are_never_ok(every_preset: Path, tmp_path: Path) -> None:
    vectors = load_vectors(every_preset)
    one = vectors[0]
    results = {"implementation": "partial", "vectors": {one.id: {"params": {
        n: [["0x0p+0"] * 3] for n in one.meta["tensors"]}}}}
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(results))
    table = check(every_preset, path)
    assert table.loc[table["id"] == one.id, "status"].item() == "error"
    assert set(table.loc[table["id"] != one.id, "status"]) == {"missing"}
    assert cli(["vectors", "check", str(every_preset), "--results", str(path)]) == 1
    path.write_text("{not json")
    assert cli(["vectors", "check", str(every_preset), "--results", str(path)]) == 2


def test_json_npz_and_text_hold_the_same_values(every_preset: Path) -> None:
    v = next(v for v in load_vectors(every_preset) if v.id == "torch/momentum-centered/float32")
    stem = every_preset / "torch" / "momentum-centered.float32"
    body = json.loads(stem.with_name(stem.name + ".json").read_text())
    for name in v.meta["tensors"]:
        for where in ("inputs/params", "inputs/state/nu", "expected/params", "tolerance/state/trace"):
            node = body
            for part in where.split("/"):
                node = node[part]
            got = np.array(node[name], dtype=object)
            assert np.array_equal(np.vectorize(unhex)(got).astype(np.float64), v.arrays[f"{where}/{name}"])
    from harness.conformance.metrics import ulp

    for key in [k for k in v.arrays if k.startswith("tolerance/")]:  # the per-row ulp tolerance says the same
        ulps = v.arrays["tolerance_ulp/" + key[len("tolerance/"):]]
        np.testing.assert_allclose(ulps * ulp(v.arrays["expected/" + key[10:]], "float32"), v.arrays[key], rtol=1e-12)
    tokens = stem.with_name(stem.name + ".txt").read_text().split()
    at = tokens.index("param") + 2
    assert [unhex(t) for t in tokens[at:at + 6]] == v.arrays["inputs/params/weight"].tolist()
    assert body["arguments"] == {"lr": 1e-3, "alpha": 0.9, "momentum": 0.9, "centered": True}


def test_bad_export_input_is_one_line(tmp_path: Path, capsys) -> None:
    assert cli(["vectors", "export", "--preset", "tourch", "--out", str(tmp_path / "x")]) == 2
    assert "tourch" in capsys.readouterr().err
    assert cli(["vectors", "export", "--preset", "torch", "--case", "nosuch", "--out", str(tmp_path / "y")]) == 2
    assert "own-defaults" in capsys.readouterr().err  # the suite's cases are listed
    for flag in ("--steps", "--elements", "--warmup"):
        assert cli(["vectors", "export", "--preset", "torch", flag, "-1", "--out", str(tmp_path / "z")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0], err
    assert not (tmp_path / "z").exists()


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_c_example_passes_the_torch_vectors(tmp_path: Path) -> None:
    binary = tmp_path / "rmsprop"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(ROOT / "examples" / "c_rmsprop" /
                                                                            "rmsprop.c"), "-lm"], check=True)
    vectors = tmp_path / "vectors"
    assert cli(["vectors", "export", "--preset", "torch", "--out", str(vectors)]) == 0
    texts = sorted(str(p) for p in (vectors / "torch").glob("*.txt"))
    assert len(texts) >= 10  # five torch cases of the default suite, two dtypes
    results = tmp_path / "results.json"
    with results.open("w") as out:
        subprocess.run([str(binary), *texts], stdout=out, check=True, timeout=60)
    table = check(vectors, results)
    assert (table["status"] == "ok").all(), table[["id", "status", "reason"]]
    assert cli(["vectors", "check", str(vectors), "--results", str(results)]) == 0


def test_planted_symlinks_are_never_followed(every_preset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "v"
    shutil.copytree(every_preset, copy)
    target = copy / "torch" / "own-defaults.float32.json"
    outside = tmp_path / "outside.json"
    outside.write_text(target.read_text())
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(VectorError, match="symbolic link"):
        load_vectors(copy)
    victim = tmp_path / "victim.txt"  # a re-export must not write through a planted link either
    victim.write_text("keep")
    (copy / "torch" / "own-defaults.float32.txt").unlink()
    (copy / "torch" / "own-defaults.float32.txt").symlink_to(victim)
    assert cli(["vectors", "export", "--preset", "torch", "--case", "own-defaults", "--out", str(copy)]) == 2
    assert victim.read_text() == "keep"
