"""The regression gate: baselines on disk, each check's rules, planted regressions end to end, the CLI.

Synthetic tables pin each rule exactly; the stand-in adapter plants a divergence (``drift``)
and a 30% slowdown (``FAKE_BENCH=slow``) through the real runner and bench; the framework
test plants ``eps=1e-7`` into torch itself. The slowdown test pads each step with a sleep
(``FAKE_BENCH_SLEEP``) so its timings follow the OS timer, not the load on a shared CI machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.adapters import ADAPTERS, AdapterInfo
from harness.bench import run_bench
from harness.cli import main
from harness.gate import Thresholds, gate, markdown
from harness.gate.baseline import (
    BaselineError,
    Tables,
    load_baseline,
    load_run_tables,
    save_baseline,
    write_baseline,
)

from .runs import write_run

FINGERPRINT = {"digest": "a" * 64, "cpu": {"vendor": "AuthenticAMD", "family": "25", "model": "1",
                                          "flags": ["avx", "avx2", "fma"]}, "numpy": {"simd": ["X86_V3"]},
               "env": {}, "frameworks": {}, "gpus": []}
ENV = {"cpu": "Test CPU", "cpu_count": 2, "python": "3.11.0", "packages": {"torch": "2.13.0"},
       "suite": {"name": "s"}, "git": {"revision": "abc", "dirty": False}, "fingerprint": FINGERPRINT}
OTHER_MACHINE = {**ENV, "cpu": "Other CPU", "fingerprint": {
    **FINGERPRINT, "digest": "b" * 64, "cpu": {"vendor": "GenuineIntel", "family": "6", "model": "167",
                                               "flags": ["avx", "avx2", "fma", "avx512f"]}}}


# ------------------------------------------------------------------ synthetic tables
def summary(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(case, dtype, status) rows of adapter "a" on the cpu."""
    return pd.DataFrame([{"suite": "s", "case": c, "adapter": "a", "device": "cpu", "dtype": d, "status": st,
                          "reason": f"why {st}"} for c, d, st in rows])


def divergence(values: dict[tuple[str, str], list[float]], steps=(1, 10, 100), figure="max_ulp") -> pd.DataFrame:
    rows = []
    for (case, dtype), figs in values.items():
        for step, value in zip(steps, figs, strict=True):
            row = {"suite": "s", "case": case, "adapter": "a", "device": "cpu", "dtype": dtype, "step": step,
                   "max_ulp": 1.0, "median_ulp": 0.5, "budget_ratio": 3.0, "nu_budget_ratio": 2.0,
                   "mu_budget_ratio": np.nan, "trace_budget_ratio": np.nan, "tolerance": 40.0,
                   "nu_tolerance": 40.0, "mu_tolerance": np.nan, "trace_tolerance": np.nan}
            row[figure] = value
            rows.append(row)
    return pd.DataFrame(rows)


def conformance(statuses, values, figure="max_ulp", steps=(1, 10, 100), env=ENV) -> Tables:
    return Tables("x", summary=summary(statuses), divergence=divergence(values, steps, figure),
                  envs={"conformance": env})


OK2 = [("c1", "float32", "ok"), ("c2", "float64", "ok")]
BASE = {("c1", "float32"): [1.0, 1.0, 1.0], ("c2", "float64"): [2.0, 4.0, 8.0]}


def test_identical_runs_pass_with_nothing_to_say() -> None:
    result = gate(conformance(OK2, BASE), conformance(OK2, BASE))
    assert result.passed and result.exit_code == 0 and result.findings.empty and result.changes.empty
    assert "## rmsprop-harness gate: PASS" in markdown(result)


def test_one_ulp_to_three_ulp_is_news_even_when_both_pass() -> None:
    now = {**BASE, ("c1", "float32"): [1.0, 3.0, 1.5]}
    result = gate(conformance(OK2, BASE), conformance(OK2, now))
    assert not result.passed and result.exit_code == 1
    (reg,) = result.regressions.itertuples()
    assert (reg.check, reg.item, reg.figure, reg.step) == ("divergence", "c1 / a [float32@cpu]", "max_ulp", 10)
    assert "max_ulp 1 -> 3 at step 10 (3x the baseline, limit 2x; 1 of 3 recorded steps over)" in reg.message
    assert len(result.changes) == 1  # the last step that differs, with its ratio
    assert "FAIL (1 regression)" in markdown(result)


@pytest.mark.parametrize(("base", "now", "regression"), [
    ([1.0, 1.0, 1.0], [1.0, 1.5, 2.0], False),  # up to the factor: not news
    ([0.2, 0.2, 0.2], [0.9, 0.9, 0.9], False),  # under one ULP counts as one ULP: the output's own rounding
    ([0.0, 0.0, 0.0], [2.0, 2.0, 2.0], False),  # bit-exact to 2 ULP: 2x the floor, at the limit
    ([0.0, 0.0, 0.0], [2.5, 0.0, 0.0], True),
    ([100.0, 100.0, 100.0], [150.0, 201.0, 100.0], True),
    ([1.0, 1.0, 1.0], [1.0, 1.0, np.inf], True),  # non-finite now
])
def test_divergence_factor_and_floor(base, now, regression) -> None:
    result = gate(conformance(OK2, {**BASE, ("c1", "float32"): base}), conformance(OK2, {**BASE, ("c1", "float32"):
                                                                                        now}))
    assert (not result.passed) == regression, result.findings


@pytest.mark.parametrize("figure", ["median_ulp", "budget_ratio", "nu_budget_ratio"])
def test_every_gated_figure_is_compared(figure) -> None:
    base = conformance(OK2, {("c1", "float32"): [3.0, 3.0, 3.0], ("c2", "float64"): [3.0, 3.0, 3.0]}, figure)
    now = conformance(OK2, {("c1", "float32"): [3.0, 3.0, 7.0], ("c2", "float64"): [3.0, 3.0, 3.0]}, figure)
    (reg,) = gate(base, now).regressions.itertuples()
    assert reg.figure == figure and reg.step == 100


def test_a_lower_factor_is_stricter() -> None:
    now = {**BASE, ("c1", "float32"): [1.0, 1.6, 1.0]}
    assert gate(conformance(OK2, BASE), conformance(OK2, now)).passed
    assert not gate(conformance(OK2, BASE), conformance(OK2, now), Thresholds(factor=1.5)).passed


def test_shrinking_divergence_is_an_improvement_not_a_failure() -> None:
    now = {**BASE, ("c2", "float64"): [2.0, 1.0, 1.0]}
    result = gate(conformance(OK2, BASE), conformance(OK2, now))
    assert result.passed and list(result.findings["severity"]) == ["improvement"]


def test_missing_steps_and_figures_fail_closed() -> None:
    base = conformance(OK2, BASE)
    fewer = conformance(OK2, BASE)
    fewer.divergence = fewer.divergence[~((fewer.divergence["case"] == "c1") & (fewer.divergence["step"] == 100))]
    (reg,) = gate(base, fewer).regressions.itertuples()
    assert "recorded steps 100 missing now" in reg.message
    lost = conformance(OK2, BASE)
    lost.divergence.loc[lost.divergence["case"] == "c2", "budget_ratio"] = np.nan
    (reg,) = gate(base, lost).regressions.itertuples()
    assert reg.figure == "budget_ratio" and "missing now at step 1" in reg.message


@pytest.mark.parametrize(("now", "severity", "text"), [
    ("fail", "regression", "passed in the baseline, now fail: why fail"),
    ("error", "regression", "passed in the baseline, now error: why error"),
    ("skipped", "regression", "passed in the baseline, now skipped: why skipped"),  # missing data fails closed
    ("unsupported", "regression", "passed in the baseline, now unsupported"),
    (None, "regression", "passed in the baseline, missing now (missing data fails closed)"),
])
def test_a_case_that_passed_must_still_pass(now, severity, text) -> None:
    rows = [OK2[0]] + ([("c2", "float64", now)] if now else [])
    values = {k: v for k, v in BASE.items() if now or k[0] == "c1"}
    result = gate(conformance(OK2, BASE), conformance(rows, values))
    (reg,) = result.regressions.itertuples()
    assert reg.item == "c2 / a [float64@cpu]" and text in reg.message and reg.check == "conformance"


def test_known_failures_new_cases_and_fixes() -> None:
    base = conformance([*OK2, ("known", "float32", "fail"), ("fixed", "float32", "error")], BASE)
    now = conformance([*OK2, ("known", "float32", "fail"), ("fixed", "float32", "ok"), ("new-ok", "float32", "ok"),
                       ("new-bad", "float32", "fail")], BASE)
    f = gate(base, now).findings.set_index("item")
    assert f.loc["known / a [float32@cpu]", "severity"] == "notice"  # still failing: known, not a regression
    assert f.loc["fixed / a [float32@cpu]", "severity"] == "improvement"
    assert f.loc["new-ok / a [float32@cpu]", "severity"] == "notice"
    assert f.loc["new-bad / a [float32@cpu]", "severity"] == "regression"  # a new failure is a failure


def test_parity_verdicts_and_missing_pairs() -> None:
    def pairs(verdict: str, budgets: float, n: int = 2) -> pd.DataFrame:
        return pd.DataFrame([{"scenario": "sc", "a": "torch", "b": f"p{i}", "divergence": 1e-15, "budgets64": budgets,
                              "verdict": verdict} for i in range(n)])

    base = conformance(OK2, BASE)
    base.parity = pairs("identical", 0.0)
    for parity, message in [(pairs("rounding", 0.5), "verdict identical -> rounding"),
                            (pairs("identical", 0.0, 1), "in the baseline, missing now")]:
        now = conformance(OK2, BASE)
        now.parity = parity
        regs = gate(base, now).regressions
        assert len(regs) >= 1 and regs["message"].str.contains(message).all() and set(regs["check"]) == {"parity"}
    base.parity = pairs("rounding", 3.0)
    now = conformance(OK2, BASE)
    now.parity = pairs("rounding", 7.0)
    assert gate(base, now).regressions["message"].str.contains("divergence 3 -> 7 float64 budgets").all()


def test_mismatched_runs_are_bad_input() -> None:
    base = conformance(OK2, BASE)
    other = conformance(OK2, BASE)
    other.summary["suite"] = "edge"
    other.divergence["suite"] = "edge"
    with pytest.raises(BaselineError, match="the baseline is for suite s, the current run is suite edge"):
        gate(base, other)
    with pytest.raises(BaselineError, match=r"has no summary\.parquet"):
        gate(base, Tables("bench-only", throughput=bench_table([1.0] * 7)))
    with pytest.raises(ValueError, match="divergence factor 1 must be a finite number > 1"):
        Thresholds(factor=1)


# ------------------------------------------------------------------ throughput
def bench_table(samples: list[float], *, status="ok", framework="fake", copy_samples=None) -> pd.DataFrame:
    key = {"suite": "perf", "bench": "size", "device": "cpu", "dtype": "float32", "n_params": 1000, "n_tensors": 1,
           "layout": "flat", "reason": "", "device_name": "Test CPU"}
    rows = [{**key, "adapter": "fake", "variant": "numpy", "framework": framework, "status": status,
             "median_s": float(np.median(samples)), "sample_s": list(samples)}]
    if copy_samples is not None:
        rows.append({**key, "adapter": "copy.numpy", "variant": "copy", "framework": "copy", "status": "ok",
                     "median_s": float(np.median(copy_samples)), "sample_s": list(copy_samples)})
    return pd.DataFrame(rows)


def bench(samples, env=ENV, **kw) -> Tables:
    return Tables("b", throughput=bench_table(samples, **kw), envs={"throughput": env})


def draws(median: float, n: int = 15, spread: float = 0.05) -> list[float]:
    """Samples with 5% multiplicative noise, seeded by the arguments (the same in any test order)."""
    rng = np.random.default_rng(int(median * 1e7) + n)
    return list(median * np.exp(rng.normal(0, spread, n)))


def test_a_thirty_percent_slowdown_fails_and_noise_does_not() -> None:
    base = bench(draws(1e-3))
    slow = gate(base, bench(draws(1.3e-3)))
    (reg,) = slow.regressions.itertuples()
    assert reg.check == "throughput" and reg.item == "size: fake numpy [float32@cpu] 1e+03 params"
    assert 1.2 < reg.change < 1.4 and "slower, median " in reg.message and "Mann-Whitney U one-sided" in reg.message
    assert gate(base, bench(draws(1e-3))).passed
    assert gate(base, bench(draws(1.05e-3))).passed  # significant, perhaps, but under the 10% that matters


def with_rounds(tables: Tables, medians: list[float]) -> Tables:
    tables.throughput["round_median_s"] = [medians]
    return tables


def test_with_rounds_the_shift_must_also_beat_the_run_to_run_noise() -> None:
    base = with_rounds(bench(draws(1e-3)), [0.8e-3, 1.0e-3, 1.2e-3])
    drifting = with_rounds(bench(draws(1.3e-3)), [1.1e-3, 1.3e-3, 1.55e-3])  # rounds as noisy as the baseline's
    result = gate(base, drifting)
    assert result.passed, result.findings["message"].tolist()
    assert "not significant, within the noise" in result.findings["message"].iloc[0]
    assert "Welch t over log round medians p = " in result.findings["message"].iloc[0]
    steady = gate(with_rounds(bench(draws(1e-3)), [0.99e-3, 1.0e-3, 1.01e-3]),
                  with_rounds(bench(draws(1.3e-3)), [1.29e-3, 1.3e-3, 1.31e-3]))
    (reg,) = steady.regressions.itertuples()
    assert "(3/3 rounds)" in reg.message
    assert not gate(bench(draws(1e-3)), bench(draws(1.3e-3))).passed  # one round: the samples decide alone


def test_rounds_are_pooled_per_point() -> None:
    from harness.bench.run import _pool

    key = {"bench": "b", "adapter": "a", "variant": "v", "device": "cpu", "dtype": "float32", "n_params": 10,
           "n_tensors": 1, "layout": "flat", "first_step_s": 1.0, "peak_mem_bytes": 5, "mem_delta_bytes": 1}
    rows = [{**key, "status": "ok", "round": 0, "median_s": 2.0, "sample_s": [1.0, 2.0, 3.0]},
            {**key, "status": "ok", "round": 1, "median_s": 5.0, "sample_s": [4.0, 5.0, 6.0], "peak_mem_bytes": 9},
            {**key, "variant": "w", "status": "ok", "round": 0, "median_s": 1.0, "sample_s": [1.0]},
            {**key, "variant": "w", "status": "error", "round": 1, "reason": "boom"}]
    ok, bad = _pool(rows)
    assert ok["sample_s"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and ok["median_s"] == 3.5 and ok["samples"] == 6
    assert ok["round_median_s"] == [2.0, 5.0] and ok["rounds"] == 2 and ok["peak_mem_bytes"] == 9
    assert bad["status"] == "error" and bad["reason"] == "boom (round 2 of 2)"


def test_a_large_but_insignificant_change_is_a_notice() -> None:
    base = bench([1e-3, 2e-3, 1e-3])  # three samples cannot reach p < 0.01 (the smallest is 1/20)
    result = gate(base, bench([1.3e-3, 2.6e-3, 1.3e-3]))
    assert result.passed and "not significant, within the noise" in result.findings["message"].iloc[0]


def test_throughput_only_between_the_same_machine_and_versions_unless_asked() -> None:
    other = {**ENV, "cpu": "Other CPU", "packages": {"torch": "2.14.0"}}
    result = gate(bench(draws(1e-3)), bench(draws(2e-3), env=other))
    assert result.passed and result.compared["throughput"].startswith("not compared")
    assert "cpu 'Test CPU' vs 'Other CPU'; torch 2.13.0 vs 2.14.0" in result.throughput_note
    assert "--throughput always" in markdown(result)
    forced = gate(bench(draws(1e-3)), bench(draws(2e-3), env=other), throughput="always")
    assert not forced.passed and "across different machines or versions, as asked" in forced.throughput_note
    off = gate(bench(draws(1e-3)), bench(draws(2e-3)), throughput="off")
    assert off.passed and off.compared["throughput"].startswith("off")


def test_throughput_points_that_error_or_vanish_fail_and_copy_kernels_are_context() -> None:
    base = bench(draws(1e-3), copy_samples=draws(1e-4))
    assert "now error" in gate(base, bench(draws(1e-3), status="error")).regressions["message"].iloc[0]
    gone = bench(draws(1e-3))
    gone.throughput = gone.throughput.iloc[0:0]
    gone.throughput = pd.concat([gone.throughput, bench_table(draws(1e-3), copy_samples=draws(1e-4)).iloc[1:]])
    assert "missing now" in gate(base, gone).regressions["message"].iloc[0]
    slow_machine = gate(base, bench(draws(1e-3), copy_samples=draws(2e-4)))
    assert slow_machine.passed and "the machine's memory bandwidth, not gated" in slow_machine.findings["message"][0]
    no_samples = bench(draws(1e-3))
    no_samples.throughput["sample_s"] = None
    assert "no repeat samples" in gate(no_samples, bench(draws(1e-3))).regressions["message"].iloc[0]


# --------------------------------------------------------------- baselines on disk
def test_baseline_round_trip_and_corruption(tmp_path) -> None:
    run = tmp_path / "run"
    tables = conformance(OK2, BASE)
    write_run(run, {"summary": tables.summary, "divergence": tables.divergence.assign(extra=1.0)}, ENV)
    path = save_baseline([run], tmp_path / "bl")
    saved = load_baseline(path)
    pd.testing.assert_frame_equal(saved.summary[tables.summary.columns], tables.summary)
    assert "extra" not in saved.divergence and saved.envs["conformance"]["cpu"] == "Test CPU"
    assert gate(saved, load_run_tables([run])).passed
    manifest = json.loads((path / "baseline.json").read_text())
    assert set(manifest["files"]) == {"summary.parquet", "divergence.parquet"} and manifest["version"] == 2
    with open(path / "divergence.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(BaselineError, match=r"divergence\.parquet: does not match its checksum in baseline\.json"):
        load_baseline(path)
    (path / "baseline.json").write_text("{not json")
    with pytest.raises(BaselineError, match=r"baseline\.json: unreadable"):
        load_baseline(path)
    (path / "baseline.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(BaselineError, match="baseline format version 99, this harness reads version 2"):
        load_baseline(path)
    with pytest.raises(BaselineError, match="not a baseline"):
        load_baseline(run)
    with pytest.raises(BaselineError, match="is a run folder"):
        write_baseline(tables, run, ["x"])  # never overwrites a folder that is not a baseline
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(BaselineError, match="exists and is not a baseline"):
        write_baseline(tables, tmp_path / "notes", ["x"])
    with pytest.raises(BaselineError, match="not a run folder"):
        save_baseline([tmp_path], tmp_path / "bl2")


# ------------------------------------------------------------------ end to end
RUN_SUITE = """
name = "gated"
[defaults]
adapters = ["fake"]
steps = 50
dtypes = ["float32", "float64"]
devices = ["cpu"]
shapes = { w = [8, 8], b = [8] }
[[case]]
name = "one"
seed = 1
args.fake = { lr = 0.01 }
[[case]]
name = "two"
seed = 2
args.fake = { lr = 0.001, momentum = 0.9 }
"""


@pytest.fixture
def fake_suite(monkeypatch, tmp_path):
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    path = tmp_path / "gated.toml"
    path.write_text(RUN_SUITE)
    return path


def test_cli_save_gate_plant_and_update(fake_suite, tmp_path, capsys, monkeypatch) -> None:
    base_run, run, bl = tmp_path / "base", tmp_path / "run", tmp_path / "baseline"
    assert main(["run", "--suite", str(fake_suite), "--out", str(base_run), "--no-progress", "--no-report"]) == 0
    assert main(["baseline", "save", str(base_run), "--to", str(bl)]) == 0
    assert "4 conformance rows" in capsys.readouterr().out
    # the same code again: bitwise the same, the gate passes and says so in gate.md / gate.json
    assert main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bl), "--current", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## rmsprop-harness gate: PASS") and f"{run}/gate.md" in out
    verdict = json.loads((run / "gate.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["regressions"] == 0 and verdict["findings"] == []
    # a planted nudge (parameters 2^-22 relative off): a few ULP, still within tolerance, and still news
    monkeypatch.setenv("FAKE_1", "nudge")
    assert main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bl), "--current", str(run), "--out", str(tmp_path / "g")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## rmsprop-harness gate: FAIL")
    md = (tmp_path / "g" / "gate.md").read_text()
    assert "| divergence | one / fake [float32@cpu] | median_ulp " in md and "the baseline, limit 2x" in md
    assert "two / fake" not in md.split("### Regressions")[1].split("###")[0]  # only the planted case
    # a planted drift (1e-6 relative): float64 fails outright
    monkeypatch.setenv("FAKE_1", "drift")
    main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report"])
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bl), "--current", str(run), "--out", str(tmp_path / "g")]) == 1
    md = (tmp_path / "g" / "gate.md").read_text()
    assert "| conformance | one / fake [float64@cpu] | passed in the baseline, now fail: parameters:" in md
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    assert sum(t.type == "table_open" for t in tokens) >= 3  # compared, regressions, changes
    # an intended change: --update-baseline shows the diff, replaces the baseline; then the gate passes
    assert main(["gate", "--baseline", str(bl), "--current", str(run), "--update-baseline"]) == 0
    out = capsys.readouterr().out
    assert "baseline updated" in out and "### Changes written to" in out and "| ok | fail |" in out
    assert main(["gate", "--baseline", str(bl), "--current", str(run)]) == 0


@pytest.mark.parametrize(("damage", "message"), [
    (lambda bl: (bl / "summary.parquet").write_bytes((bl / "summary.parquet").read_bytes()[:-10]),
     "summary.parquet: does not match its checksum in baseline.json (corrupted or edited)"),
    (lambda bl: (bl / "baseline.json").write_text("{"), "baseline.json: unreadable"),
    (lambda bl: (bl / "divergence.parquet").unlink(), "divergence.parquet: missing (listed in baseline.json)"),
])
def test_a_corrupted_baseline_is_exit_2_with_one_line(fake_suite, tmp_path, capsys, damage, message) -> None:
    run, bl = tmp_path / "run", tmp_path / "bl"
    main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report", "--case", "one"])
    main(["baseline", "save", str(run), "--to", str(bl)])
    capsys.readouterr()
    damage(bl)
    assert main(["gate", "--baseline", str(bl), "--current", str(run)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("rmsprop-harness: error: ") and message in err, err
    assert captured.out == "" and not (run / "gate.md").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["gate", "--baseline", "nowhere", "--current", "."], "nowhere: no such baseline folder"),
    (["gate", "--baseline", "BL", "--current", "nowhere"], "nowhere: no such run folder"),
    (["gate", "--baseline", "BL", "--current", "RUN", "--factor", "0.5"],
     "divergence factor 0.5 must be a finite number > 1"),
    (["gate", "--baseline", "BL", "--current", "RUN", "--throughput", "maybe"], "invalid choice: 'maybe'"),
    (["gate", "--baseline", "BL", "--current", "RUN", "--min-effect", "0"], "minimum effect 0.0 must be in (0, 10)"),
    (["gate", "--baseline", "BL", "--current", "RUN", "--alpha", "1"], "alpha 1.0 must be in (0, 1)"),
    (["baseline", "save", "nowhere"], "nowhere: no such run folder"),
    (["gate", "--current", "RUN"], "the following arguments are required: --baseline"),
])
def test_gate_bad_input_is_one_line(argv, message, tmp_path, capsys) -> None:
    bl = tmp_path / "bl"
    run = tmp_path / "run"
    tables = conformance(OK2, BASE)
    write_run(run, {"summary": tables.summary, "divergence": tables.divergence}, ENV)
    write_baseline(tables, bl, ["x"])
    argv = [str(bl) if a == "BL" else str(run) if a == "RUN" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err


BENCH = """
name = "gated-bench"
rounds = 3
[[bench]]
name = "size"
adapters = ["fake"]
sizes = [1000, 4000]
min_time = 0.1
repeats = 9
"""


def test_a_planted_thirty_percent_slowdown_fails_the_gate(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake",
                                                      devices=("cpu",)))
    suite = tmp_path / "bench.toml"
    suite.write_text(BENCH)
    monkeypatch.setenv("FAKE_BENCH_SLEEP", "0.005")  # timings follow the OS timer: stable on a loaded machine
    runs = {}
    for name, behaviour in (("base", "ok"), ("same", "ok"), ("slow", "slow")):
        monkeypatch.setenv("FAKE_BENCH", behaviour)
        runs[name] = tmp_path / name
        run_bench(suite, adapters=["fake"], out=runs[name])
    tp = pd.read_parquet(runs["base"] / "throughput.parquet")
    fake = tp[tp["adapter"] == "fake"]
    assert all(len(s) == n >= 27 for s, n in zip(fake["sample_s"], fake["samples"], strict=True))  # 3 rounds
    assert (fake["rounds"] == 3).all() and all(len(r) == 3 for r in fake["round_median_s"])
    assert main(["baseline", "save", str(runs["base"]), "--to", str(tmp_path / "bl")]) == 0
    assert main(["gate", "--baseline", str(tmp_path / "bl"), "--current", str(runs["same"])]) == 0
    assert "throughput compared: same machine type and versions" in capsys.readouterr().out
    assert main(["gate", "--baseline", str(tmp_path / "bl"), "--current", str(runs["slow"])]) == 1
    regs = json.loads((runs["slow"] / "gate.json").read_text())["findings"]
    regs = [r for r in regs if r["severity"] == "regression"]
    assert {r["item"] for r in regs} == {"size: fake numpy [float32@cpu] 1e+03 params",
                                         "size: fake numpy [float32@cpu] 4e+03 params"}
    for r in regs:
        assert r["figure"] == "median_s" and 1.2 < r["change"] < 1.45, r
        assert "slower, median" in r["message"] and "Mann-Whitney" in r["message"]


PLANT = '''
import torch.optim

_init = torch.optim.RMSprop.__init__


def _planted(self, params, *args, **kwargs):  # a framework upgrade that silently changes eps
    kwargs["eps"] = 1e-7
    _init(self, params, *args, **kwargs)


torch.optim.RMSprop.__init__ = _planted
'''


@pytest.mark.framework
def test_torch_with_eps_silently_1e_7_fails_the_gate(tmp_path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "plant").mkdir()
    (tmp_path / "plant" / "sitecustomize.py").write_text(PLANT)

    def cli(*argv: str, plant: bool = False) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(tmp_path / "plant")} if plant else dict(os.environ)
        return subprocess.run([sys.executable, "-m", "harness.cli", *argv], capture_output=True, text=True, env=env,
                              timeout=600, check=False)

    run = ("run", "--adapter", "torch.single", "--case", "own-defaults,weight-decay", "--no-progress", "--no-report")
    assert cli(*run, "--out", str(tmp_path / "base")).returncode == 0
    assert cli("baseline", "save", str(tmp_path / "base"), "--to", str(tmp_path / "bl")).returncode == 0
    cli(*run, "--out", str(tmp_path / "planted"), plant=True)
    gated = cli("gate", "--baseline", str(tmp_path / "bl"), "--current", str(tmp_path / "planted"))
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "own-defaults / torch.single [float32@cpu] | passed in the baseline, now fail: parameters:" in gated.stdout


def test_the_example_workflow_runs_real_commands() -> None:
    """Every rmsprop-harness command in examples/github-actions-gate.yml parses, and the numerics job
    gates the default suite against the committed baseline, as .ci/run does."""
    import shlex
    from pathlib import Path

    import yaml

    from harness.cli import build_parser

    root = Path(__file__).resolve().parent.parent
    workflow = yaml.safe_load((root / "examples" / "github-actions-gate.yml").read_text())
    commands = [line for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
                for line in step["run"].splitlines() if line.startswith("rmsprop-harness ")]
    assert len(commands) >= 4
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command.split("||")[0])[1:]
        parser.parse_args(argv)  # exits 2 on an unknown option: the example must not rot
    assert any("gate --baseline reports/baseline --current reports/latest --throughput off" in c for c in commands)
    ci = (root / ".ci" / "run").read_text()
    assert "./dev test -q" in ci and "gate --baseline reports/baseline --current reports/latest --throughput off" in ci
    load_baseline(root / "reports" / "baseline")  # the committed baseline is intact


def test_a_conformance_run_and_a_bench_folder_make_one_baseline(tmp_path) -> None:
    run, bench_dir = tmp_path / "run", tmp_path / "bench"
    tables = conformance(OK2, BASE)
    write_run(run, {"summary": tables.summary, "divergence": tables.divergence}, ENV)
    write_run(bench_dir, {"throughput": bench_table(draws(1e-3))}, ENV, kind="bench")
    both = load_run_tables([run, bench_dir])
    assert both.conformance and both.bench and set(both.envs) == {"conformance", "throughput"}
    saved = load_baseline(save_baseline([run, bench_dir], tmp_path / "bl"))
    assert len(saved.throughput) == 1 and list(saved.throughput["sample_s"].iloc[0]) == draws(1e-3)
    assert gate(saved, both).passed
    with pytest.raises(BaselineError, match=r"a second summary\.parquet"):
        load_run_tables([run, run])
    with pytest.raises(BaselineError, match=r"has no throughput\.parquet"):
        gate(saved, load_run_tables([run]))  # the baseline gates throughput: the bench folder is needed
    assert gate(saved, load_run_tables([run]), throughput="off").passed


def test_the_noise_script_reports_false_alarms_and_power(tmp_path) -> None:
    """examples/gate_noise.py (the README's false-alarm and power figures) on three synthetic runs."""
    from pathlib import Path

    for i, median in enumerate((1e-3, 1.01e-3, 0.99e-3)):
        run = tmp_path / f"r{i}"
        table = bench_table(draws(median))
        table["round_median_s"] = [[median * 0.99, median, median * 1.01]]
        write_run(run, {"throughput": table}, ENV, kind="bench")
    script = Path(__file__).resolve().parent.parent / "examples" / "gate_noise.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert "r1 vs r0: PASS, 0 regressions" in out and "r2 vs r0: PASS" in out
    assert "6 ordered pairs of runs r0..r2: 0 false regressions in 6 point comparisons" in out
    assert "every sample x1.3: 100% of points fail per gate" in out
