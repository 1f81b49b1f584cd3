"""`rmsprop-harness explain` and the CLI's error contract (one line, exit 2)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from reference import presets


def test_explain_all_presets_by_default(capsys) -> None:
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for name in presets.PRESETS:
        assert name in out
    assert "* effective_eps_placement" in out and "* initial_accumulator" in out
    assert "tf1: the accumulator starts at 1" in out


def test_explain_with_arguments_and_diff_markdown(capsys) -> None:
    assert main(["explain", "torch:lr=0.01,momentum=0.9", "optax:learning_rate=0.01,eps_in_sqrt=False,"
                 "momentum=0.9,decay=0.99", "--diff", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| knob | torch:lr=0.01,momentum=0.9 |")
    rows = {line.split("|")[1].strip(): line for line in lines[2:]}
    # torch vs optax with matched settings differ only in lr placement and eps (1e-8 both) ...
    assert set(rows) == {"**lr_placement**"}, rows


def test_explain_json(capsys) -> None:
    assert main(["explain", "torch", "keras", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["knobs"]["effective_eps_placement"] == {"torch": "outside", "keras": "inside"}
    assert "eps" in data["differs"] and "centered" not in data["differs"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "tourch"], "unknown preset 'tourch'"),
        (["explain", "torch:alpha=2"], "alpha=2.0 is invalid"),
        (["explain", "torch:betas=1"], "unexpected keyword argument"),
        (["explain", "torch:lr"], "expected arg=value"),
        (["explain", "torch:lr=fast"], "not a Python literal"),
        (["explain", "--format", "pdf"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys) -> None:
    argparse_error = args[0] == "frobnicate" or "--format" in args
    with pytest.raises(SystemExit) if argparse_error else contextlib.nullcontext():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_console_script_is_installed() -> None:
    exe = shutil.which("rmsprop-harness") or str(Path(sys.executable).with_name("rmsprop-harness"))
    proc = subprocess.run([exe, "explain", "tf_keras_legacy", "tf1", "--diff"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "initial_accumulator" in proc.stdout
    bad = subprocess.run([exe, "explain", "nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# --------------------------------------------------------------------- run
RUN_SUITE = """
[defaults]
adapters = ["fake"]
steps = 10
dtypes = ["float64"]
devices = ["cpu"]
[[case]]
name = "good"
seed = 1
[[case]]
name = "drifts"
seed = 2
"""


@pytest.fixture
def fake_suite(monkeypatch, tmp_path):
    from harness.adapters import ADAPTERS, AdapterInfo

    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    path = tmp_path / "fake.toml"
    path.write_text(RUN_SUITE)
    return path


def test_run_exit_codes_summary_table_and_files(fake_suite, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    assert main(["run", "--suite", str(fake_suite), "--out", str(out), "--no-progress", "--case", "good"]) == 0
    text = capsys.readouterr().out
    assert "good" in text and "ok" in text and "float64@cpu" in text and "1 ok in" in text
    assert {p.name for p in out.iterdir()} >= {"divergence.parquet", "summary.parquet", "env.json"}
    monkeypatch.setenv("FAKE_2", "drift")
    assert main(["run", "--suite", str(fake_suite), "--out", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "drifts / fake [float64@cpu]: fail: parameters:" in text and "1 ok, 1 fail" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--suite", "defualt"], "defualt: no such suite file or built-in suite"),
    (["--dtype", "float8"], "--dtype 'float8' is not a dtype"),
    (["--device", "tpu"], "--device 'tpu' is not a device"),
    (["--adapter", "pytorch"], "unknown adapter 'pytorch'"),
    (["--jobs", "0"], "--jobs 0 must be in [1, 256]"),
    (["--jobs", "x"], "argument --jobs: invalid int value"),
])
def test_run_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path) -> None:
    assert _exit_code(["run", "--no-progress", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rmsprop-harness") and ": error: " in err and "\n" not in err and message in err, err


def test_run_suite_typo_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[[case]]\nname = 'a'\nsteps = 5\nstrem = {kind = 'zeros'}\n")
    assert main(["run", "--suite", str(path), "--no-progress", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rmsprop-harness: error: {path}: case[0].strem: unknown key; did you mean 'stream'?"


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_run_with_jobs_and_device_flags(fake_suite, tmp_path, capsys) -> None:
    """An explicit --device that nothing can run on tested nothing: exit 2 with the reason (a GPU CI job must not
    pass on a machine without a GPU); --device auto runs where a device is visible."""
    out = tmp_path / "out"
    assert main(["run", "--suite", str(fake_suite), "--out", str(out), "--no-progress", "--jobs", "1",
                 "--device", "cuda", "--case", "good"]) == 2  # cuda is gpu; the fake has none
    captured = capsys.readouterr()
    assert "  fake [float64@gpu] in good: skipped: no gpu visible to fake" in captured.out
    assert captured.err.strip() == ("rmsprop-harness: error: --device gpu: no gpu visible to fake; nothing was tested "
                                    "on it (--device auto runs where a device is visible)")
    assert main(["run", "--suite", str(fake_suite), "--out", str(out), "--no-progress", "--device", "auto",
                 "--case", "good"]) == 0
    assert "1 ok in" in capsys.readouterr().out


def test_ctrl_c_keeps_the_finished_rows_and_exits_130(fake_suite, tmp_path, capsys, monkeypatch) -> None:
    import harness.conformance.runner

    def interrupted(*args, progress, **kwargs):
        progress(1, 2, {})
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.conformance.runner, "run_suite", interrupted)
    assert main(["run", "--suite", str(fake_suite), "--out", str(tmp_path / "out"), "--no-progress"]) == 130
    assert "interrupted; the finished rows are in the run folder" in capsys.readouterr().err


def test_dry_runs_plan_without_running_or_writing(tmp_path, capsys) -> None:
    out = tmp_path / "never"
    assert main(["run", "--dry-run", "--out", str(out), "--adapter", "torch", "--dtype", "float32"]) == 0
    text = capsys.readouterr().out
    assert "torch.single" in text and "keras.jax" not in text and "dry run: nothing ran" in text
    assert "tasks to run" in text and not out.exists()
    assert main(["bench", "--dry-run", "--suite", "perf-gate", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "perf-gate: 6 jobs, 3 rounds" in text and "roofline" in text and not out.exists()
    assert main(["run", "--dry-run", "--suite", "nothing"]) == 2  # bad input is still bad input
    assert main(["bench", "--dry-run", "--repeats", "1"]) == 2
