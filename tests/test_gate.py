"""The regression gate's rules, each pinned on synthetic tables: divergence (exact and portable),
conformance statuses, parity verdicts, throughput with samples and rounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.gate import Thresholds, gate, markdown
from harness.gate.baseline import BaselineError, Tables

from .gate_tables import (
    BASE,
    ENV,
    OK2,
    bench,
    bench_table,
    conformance,
    draws,
    with_rounds,
)


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



def test_a_thirty_percent_slowdown_fails_and_noise_does_not() -> None:
    base = bench(draws(1e-3))
    slow = gate(base, bench(draws(1.3e-3)))
    (reg,) = slow.regressions.itertuples()
    assert reg.check == "throughput" and reg.item == "size: fake numpy [float32@cpu] 1e+03 params"
    assert 1.2 < reg.change < 1.4 and "slower, median " in reg.message and "Mann-Whitney U one-sided" in reg.message
    assert gate(base, bench(draws(1e-3))).passed
    assert gate(base, bench(draws(1.05e-3))).passed  # significant, perhaps, but under the 10% that matters




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
