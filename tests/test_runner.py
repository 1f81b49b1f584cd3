"""The runner with a stand-in adapter: statuses, isolation, incremental files, env.json, Python API."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.adapters import ADAPTERS, AdapterInfo
from harness.conformance.runner import DIVERGENCE_COLUMNS, SUMMARY_COLUMNS, RunError, run_suite
from harness.conformance.suite import load_suite

SUITE = """
name = "fake"
[defaults]
adapters = ["fake"]
steps = 20
records = 6
dtypes = ["float32", "float64"]
shapes = { w = [3, 4], b = [2] }

[[case]]
name = "good"
seed = 1
args.fake = { lr = 0.01, momentum = 0.9 }
schedule = { kind = "exponential", initial = 0.01, rate = 0.9 }

[[case]]
name = "drifts"
seed = 2

[[case]]
name = "crashes"
seed = 3

[[case]]
name = "nan"
seed = 4

[[case]]
name = "eps-inside"
seed = 5
spec = { eps_placement = "inside" }
"""


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    monkeypatch.setenv("FAKE_2", "drift")
    monkeypatch.setenv("FAKE_3", "crash")
    monkeypatch.setenv("FAKE_4", "nan")
    path = tmp_path / "fake.toml"
    path.write_text(SUITE)
    return path


def test_statuses_rows_and_files(fake, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("harness.conformance.writer.PUBLISH_EVERY", 0.0)  # a generation after every task
    out = tmp_path / "run"
    seen: list[int] = []

    def progress(done, total, row):
        assert total == 18  # 4 cases x 2 dtypes x (cpu, auto gpu) + 2 unsupported; absent gpus add no row
        if row:  # rows are on disk as soon as a task finishes
            seen.append(len(pd.read_parquet(out / "summary.parquet")))

    result = run_suite(fake, out=out, progress=progress)
    s = result.summary.set_index(["case", "dtype"])["status"].to_dict()
    assert s == {
        ("good", "float32"): "ok", ("good", "float64"): "ok",
        ("drifts", "float32"): "fail", ("drifts", "float64"): "fail",
        ("crashes", "float32"): "error", ("crashes", "float64"): "error",
        ("nan", "float32"): "fail", ("nan", "float64"): "fail",
        ("eps-inside", "float32"): "unsupported", ("eps-inside", "float64"): "unsupported",
    }
    assert seen == sorted(seen) and seen[-1] == 10
    assert result.exit_code == 1
    reasons = result.summary.set_index(["case", "dtype"])["reason"]
    assert "exited with code 3" in reasons[("crashes", "float64")]
    assert reasons[("nan", "float64")].startswith("parameters: 1 positions non-finite on one side only at step")
    assert "budgets > tolerance" in reasons[("drifts", "float64")]
    assert reasons[("eps-inside", "float32")].startswith("unsupported: eps_placement=inside")
    assert "within" in reasons[("good", "float64")]
    assert list(result.summary.columns) == SUMMARY_COLUMNS
    assert list(result.divergence.columns) == DIVERGENCE_COLUMNS
    # divergence: one row per recorded step of every task that ran; the exact copy is exactly zero
    good = result.divergence[result.divergence["case"] == "good"]
    assert sorted(good["step"].unique()) == [1, 2, 3, 6, 11, 20] and len(good) == 12
    assert (good["max_abs_err"] == 0).all() and (good["nu_budget_ratio"] == 0).all()
    assert good["trace_budget_ratio"].isna().all()  # the fake reports nu only
    # the files hold the same tables as the Python API
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), result.summary)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "divergence.parquet"), result.divergence)
    env = json.loads((out / "env.json").read_text())
    assert env["suite"]["sha256"] == load_suite(fake).digest and env["seeds"]["nan"] == 4
    assert env["packages"]["numpy"] and env["python"] and env["cpu"] and "revision" in env["git"]
    assert env["workers"]["worker0"]["versions"] == {"fake": "1.0"}


def test_missing_framework_gives_skipped_rows_and_exit_0(fake, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_MISSING", "fake is not installed")
    result = run_suite(fake, out=None, cases=["good", "eps-inside"])
    assert result.summary["status"].tolist() == ["skipped", "skipped", "unsupported", "unsupported"]
    assert result.summary["reason"].iloc[0] == "fake is not installed"
    assert result.exit_code == 0 and result.divergence.empty


def test_filters_and_overrides(fake, monkeypatch) -> None:
    result = run_suite(fake, out=None, cases=["go*"], dtypes=["float16"], devices=["cpu"])
    assert result.summary[["case", "dtype", "device"]].values.tolist() == [["good", "float16", "cpu"]]
    # an absent gpu under devices="auto" adds no row; asked for explicitly it is skipped
    monkeypatch.delenv("FAKE_GPU", raising=False)
    explicit = run_suite(fake, out=None, cases=["good"], devices=["gpu"], dtypes=["float64"])
    assert explicit.summary["status"].tolist() == ["skipped"]
    monkeypatch.setenv("FAKE_GPU", "1")
    both = run_suite(fake, out=None, cases=["good"], dtypes=["float64"])
    assert both.summary[["device", "status"]].values.tolist() == [["cpu", "ok"], ["gpu", "ok"]]
    with pytest.raises(RunError, match="no task matches --adapter torch"):
        run_suite(fake, out=None, adapters=["torch"])
    with pytest.raises(RunError, match="unknown adapter 'pytorch'"):
        run_suite(fake, out=None, adapters=["pytorch"])


def test_a_suite_timeout_turns_a_hanging_task_into_an_error_row(fake, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FAKE_1", "hang")
    path = tmp_path / "hang.toml"
    path.write_text('[[case]]\nname = "hangs"\nseed = 1\nadapters = ["fake"]\nsteps = 3\ntimeout = 2\n'
                    'dtypes = ["float64", "float32"]\ndevices = ["cpu"]\n')
    result = run_suite(path, out=None)
    assert result.summary["status"].tolist() == ["error", "error"]
    assert result.summary["reason"].str.contains("timed out after 2 s").all()
