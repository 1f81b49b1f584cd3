"""Malformed input to every subcommand: exit 0, 1 or 2 as documented, never a traceback (issue 14).

The corpus is built, not sampled: every flag of every subcommand with hostile values (empty, blank, commas,
NaN, infinities, negative and huge numbers, unicode, NUL, paths to nothing or to devices, overlong strings,
Python literals), plus malformed suite files, run folders, baselines and recordings. Each case runs the real
command line in this process; a bad input must end as one ``rmsprop-harness: error: ...`` line with exit 2
(or argparse's own exit 2), and nothing may raise.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main

from .runs import write_run

VALUES = ["", " ", ",", ",,", "nan", "inf", "-inf", "-1", "0", "1e400", "99999999999999999999", "x", "None", "[]",
          "{}", "a=b", "💥", "\x00", "../..", "/dev/null", "/etc", "x" * 300, "0x10", "1,,2", "=", "lr=", "=1",
          "9" * 400, "1e999999", "-0.0", "True", "(1, 2)", "'s'"]
NUMERIC_FLAGS = {
    "translate": ["--steps", "--seed"],
    "parity": ["--steps", "--seed"],
    "bench": ["--min-time", "--repeats", "--rounds", "--threads"],
    "gate": ["--factor", "--min-effect", "--alpha"],
    "run": ["--jobs"],
}


def _folders(tmp: Path) -> dict[str, Path]:
    """Malformed run folders and baselines, by name."""
    out: dict[str, Path] = {}

    def folder(name: str) -> Path:
        p = tmp / name
        p.mkdir()
        out[name] = p
        return p

    folder("empty")
    folder("garbage-manifest").joinpath("run.json").write_text("{not json")
    folder("list-manifest").joinpath("run.json").write_text("[1, 2]")
    folder("foreign-format").joinpath("run.json").write_text(json.dumps({"format": "other", "schema": 2}))
    folder("future-schema").joinpath("run.json").write_text(json.dumps({"format": "rmsprop-harness-run",
                                                                        "schema": 99}))
    p = folder("missing-files")
    p.joinpath("run.json").write_text(json.dumps({"format": "rmsprop-harness-run", "schema": 2, "kind": "conformance",
                                                  "files": {"summary.parquet": {"sha256": "0" * 64}}}))
    p = folder("traversal")
    p.joinpath("run.json").write_text(json.dumps({"format": "rmsprop-harness-run", "schema": 2,
                                                  "files": {"../../etc/passwd": {"sha256": "x"}}}))
    p = folder("files-not-dict")
    p.joinpath("run.json").write_text(json.dumps({"format": "rmsprop-harness-run", "schema": 2, "files": [1]}))
    rows = pd.DataFrame([{"suite": "s", "case": "c", "adapter": "a", "device": "cpu", "dtype": "float64",
                          "status": "ok", "reason": ""}])
    good = write_run(tmp / "good", {"summary": rows, "divergence": pd.DataFrame()}, {})
    out["good"] = good
    odd = write_run(tmp / "odd-status", {"summary": rows.assign(status="🙃", case=None), "divergence":
                                         pd.DataFrame()}, {"suite": "not a dict", "wall_seconds": "slow"})
    out["odd-status"] = odd
    out["partial"] = write_run(tmp / "partial", {"summary": rows}, {}, complete=False, planned=5)
    bad_table = write_run(tmp / "bad-table", {"summary": rows, "divergence": pd.DataFrame()}, {})
    (bad_table / "summary.parquet").write_bytes(b"PAR1garbage")
    (bad_table / ".generations").mkdir(exist_ok=True)
    out["bad-table"] = bad_table
    out["a-file"] = tmp / "a-file"
    out["a-file"].write_text("not a folder")
    bl = folder("bad-baseline")
    bl.joinpath("baseline.json").write_text(json.dumps({"format": "rmsprop-harness-baseline", "version": 2,
                                                         "files": {"summary.parquet": "0" * 64}}))
    bl2 = folder("baseline-traversal")
    bl2.joinpath("baseline.json").write_text(json.dumps({"format": "rmsprop-harness-baseline", "version": 2,
                                                          "files": {"../x.parquet": "0"}}))
    bl3 = folder("baseline-no-files")
    bl3.joinpath("baseline.json").write_text(json.dumps({"format": "rmsprop-harness-baseline", "version": 2,
                                                          "files": {}}))
    main(["baseline", "save", str(good), "--to", str(tmp / "real-baseline")])
    out["real-baseline"] = tmp / "real-baseline"
    return out


def _suites(tmp: Path) -> list[Path]:
    bodies = [
        "", "[[case]", "x = 1", "name = 5\n[[case]]\nname = 'a'", "[[case]]\nname = 'a'\nsteps = -3",
        "[[case]]\nname = 'a'\nsteps = 1e400", "[[case]]\nname = 'a b'", "[[case]]\nname = 'a'\ndtypes = 'float32'",
        "[[case]]\nname = 'a'\nshapes = { w = [1.5] }", "[[case]]\nname = 'a'\nshapes = 3",
        "[[case]]\nname = 'a'\nstream = { kind = 'recorded', path = '/dev/null' }",
        "[[case]]\nname = 'a'\nstream = { kind = 'recorded', path = 5 }",
        "[[case]]\nname = 'a'\nstream = { kind = 'nonfinite', at_steps = [0] }",
        "[[case]]\nname = 'a'\nseed = -1", "[[case]]\nname = 'a'\nseed = 1.5", "[[case]]\nname = 'a'\ninit_scale = 0",
        "[[case]]\nname = 'a'\nadapters = []", "[[case]]\nname = 'a'\nadapters = [1]",
        "[[case]]\nname = 'a'\nadapters = ['os:system']", "[[case]]\nname = 'a'\nspec = { lr = 'x' }",
        "[[case]]\nname = 'a'\nspec = { hyperparam_rounding = 5 }", "[[case]]\nname = 'a'\nspec = []",
        "[[case]]\nname = 'a'\nargs = 1", "[[case]]\nname = 'a'\nargs.torch = { lr = [1, 2] }",
        "[[case]]\nname = 'a'\nargs.torch = { lr = {} }", "[[case]]\nname = 'a'\nschedule = 1",
        "[[case]]\nname = 'a'\nschedule = { kind = 'values', values = 1 }",
        "[[case]]\nname = 'a'\nschedule = { kind = 'piecewise', boundaries = 3, values = [1, 2] }",
        "[[case]]\nname = 'a'\nschedule = { kind = 'exponential', initial = [1], rate = 2 }",
        "[[case]]\nname = 'a'\nmatrix = { lr = [] }", "[[case]]\nname = 'a'\nmatrix = { bogus = [1] }",
        "[[case]]\nname = 'a'\nmatrix = 1", "[[case]]\nname = 'a'\ndevices = ['tpu']", "[[case]]\nname = 'a'\n"
        "timeout = -1", "[[parity]]\npresets = 'torch'\n[[case]]\nname = 'a'",
        "[[parity]]\nsettings = { lr = 'fast' }\n[[case]]\nname = 'a'",
        "[[parity]]\nscales = 'some'\n[[case]]\nname = 'a'", "[[parity]]\nstream = { kind = 'arrays' }\n[[case]]\n"
        "name = 'a'", "[[bench]]\nsizes = [0]", "[[bench]]\ntensors = [100000000000]", "[[bench]]\nvariants = 3",
        "[[bench]]\nadapters = ['']", "\x00\x01", "[defaults]\nsteps = 'all'\n[[case]]\nname = 'a'",
    ]
    out = []
    for i, body in enumerate(bodies):
        p = tmp / f"suite{i}.toml"
        p.write_text(body)
        out.append(p)
    binary = tmp / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    return [*out, binary]


def _recordings(tmp: Path) -> list[Path]:
    out = []

    def npz(name: str, **arrays) -> None:
        p = tmp / name
        np.savez(p, **arrays)
        out.append(p)

    npz("no-grads.npz", x=np.zeros(3))
    npz("scalar.npz", **{"grads/w": np.float64(1.0)})
    npz("object.npz", **{"grads/w": np.array([{"a": 1}, None], dtype=object)})
    npz("complex.npz", **{"grads/w": np.ones((3, 2), np.complex128)})
    npz("ragged.npz", **{"grads/w": np.ones((3, 2)), "grads/b": np.ones((4, 2))})
    npz("params-shape.npz", **{"grads/w": np.ones((3, 2)), "params/w": np.ones(5)})
    npz("strings.npz", **{"grads/w": np.array(["a", "b"])})
    junk = tmp / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip at all")
    out.append(junk)
    truncated = tmp / "truncated.npz"
    np.savez(truncated, **{"grads/w": np.ones((50, 4))})
    truncated.write_bytes(truncated.read_bytes()[:300])
    out.append(truncated)
    huge_header = tmp / "header.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (2, 10**12)})
    with zipfile.ZipFile(huge_header, "w") as zf:
        zf.writestr("grads/w.npy", buf.getvalue() + b"\0" * 64)
    out.append(huge_header)
    return out


def _cases(tmp: Path) -> list[list[str]]:
    folders, suites, recordings = _folders(tmp), _suites(tmp), _recordings(tmp)
    out_dir = str(tmp / "out")
    cases: list[list[str]] = []
    # explain: hostile preset expressions
    for v in VALUES:
        cases += [["explain", v], ["explain", f"torch:{v}"], ["explain", f"torch:lr={v}"], ["explain", f"{v}:lr=1"]]
    cases += [["explain", "--format", v] for v in VALUES[:6]]
    # run: every flag with every value, the suite missing so nothing runs when the flags pass
    for flag, v in itertools.product(["--adapter", "--device", "--dtype", "--case", "--jobs", "--out"], VALUES):
        cases.append(["run", "--suite", str(tmp / "no-such-suite.toml"), "--no-progress", "--out", out_dir,
                      flag, v])
    cases += [["run", "--suite", str(s), "--out", out_dir, "--no-progress"] for s in suites]
    cases += [["run", "--suite", v, "--out", out_dir, "--no-progress"] for v in VALUES]
    # bench
    for flag, v in itertools.product(NUMERIC_FLAGS["bench"] + ["--device", "--dtype", "--adapter", "--out"],
                                     VALUES[:14]):
        cases.append(["bench", "--suite", str(tmp / "no-such-suite.toml"), "--no-progress", "--out", out_dir, flag, v])
    cases += [["bench", "--suite", str(s), "--out", out_dir, "--no-progress"] for s in suites[-8:]]
    # report, baseline save, gate on malformed folders
    for name, path in folders.items():
        cases += [["report", str(path)], ["baseline", "save", str(path), "--to", str(tmp / f"bl-{name}")]]
        cases += [["gate", "--baseline", str(path), "--current", str(folders["good"])],
                  ["gate", "--baseline", str(folders["real-baseline"]), "--current", str(path)]]
    for flag, v in itertools.product(NUMERIC_FLAGS["gate"] + ["--throughput", "--out"], VALUES[:12]):
        cases.append(["gate", "--baseline", str(folders["real-baseline"]), "--current", str(folders["good"]), flag, v])
    cases += [["baseline", "save", str(folders["good"]), "--to", v] for v in ["", " ", "/dev/null", str(tmp / "a-file"),
                                                                             str(folders["good"])]]
    # translate and parity: every flag with hostile values, hostile recordings
    for flag, v in itertools.product(["--to", "--steps", "--stream", "--seed", "--scales", "--format"], VALUES):
        if flag == "--steps" and v.isdigit() and 0 < int(v) < 10**6:
            continue
        cases.append(["translate", "--from", "torch", "lr=0.01", "--to", "optax", flag, v])
    cases += [["translate", "--from", v, "--to", "optax"] for v in VALUES]
    cases += [["translate", "--from", "torch", f"lr={v}", "--to", "keras"] for v in VALUES]
    for flag, v in itertools.product(["--presets", "--steps", "--stream", "--seed", "--scales", "--format"], VALUES):
        if flag == "--steps" and v.isdigit() and 0 < int(v) < 10**6:
            continue
        cases.append(["parity", "--presets", "torch,optax", flag, v])
    # (two presets and 20 steps: a value that turns out valid runs a small parity, not every preset's; seconds each)
    small = ["--presets", "torch,optax", "--steps", "20"]
    cases += [["parity", f"lr={v}", *small] for v in VALUES] + [["parity", f"{v}=1", *small] for v in VALUES]
    cases += [["parity", "--presets", "torch,optax", "--stream", str(r)] for r in recordings]
    cases += [["translate", "--from", "torch", "--to", "optax", "--stream", str(r)] for r in recordings]
    cases += [["parity", "--stream", f"gaussian:{v}", *small] for v in VALUES] + [
        ["parity", "--stream", f"{v}:scale=1", *small] for v in VALUES]
    return cases


@pytest.mark.slow  # end to end, tens of seconds: run by ./dev test --all and CI
def test_at_least_300_malformed_inputs_never_traceback(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths among the values (an --out of 'x') land here
    cases = _cases(tmp_path)
    assert len(cases) >= 300, len(cases)
    codes: dict[int, int] = {}
    for argv in cases:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: its own one-line error (2) or --help (0)
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        assert code in (0, 1, 2), (argv, code)
        assert "Traceback" not in captured.err, (argv, captured.err[-2000:])
        if code == 2:
            lines = [ln for ln in captured.err.strip().splitlines() if ln.strip()]
            assert len(lines) == 1 and ": error: " in lines[0], (argv, captured.err)
        codes[code] = codes.get(code, 0) + 1
    assert codes.get(2, 0) > 0.8 * len(cases), codes  # the corpus is mostly bad input, refused as such
    # refused runs leave nothing behind: a folder named after a value holds what a gate wrote, never nothing
    empty = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name in VALUES and not any(p.iterdir()))
    assert empty == [], empty


def test_a_refused_run_creates_no_output_folder(tmp_path) -> None:
    out = tmp_path / "never"
    for argv in (["run", "--suite", str(tmp_path / "missing.toml"), "--out", str(out), "--no-progress"],
                 ["bench", "--suite", str(tmp_path / "missing.toml"), "--out", str(out), "--no-progress"]):
        assert main(argv) == 2
        assert not out.exists(), argv
