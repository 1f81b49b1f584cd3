"""Worker isolation: a failing or crashing framework becomes error rows; the run goes on."""

from __future__ import annotations

import numpy as np

from harness.adapters import AdapterInfo
from harness.worker import run_in_worker

FAKE = AdapterInfo("fake", "tests.fake_adapter", "torch")
P0 = {"w": np.arange(3.0)}


def _case(behaviour: str) -> dict:
    return {"behaviour": behaviour, "params0": P0}


def test_results_come_back_in_order_and_a_raising_case_is_an_error_row() -> None:
    out = run_in_worker(FAKE, [_case("ok"), _case("raise"), _case("ok")])
    assert "params" in out[0] and "params" in out[2]
    np.testing.assert_array_equal(out[2]["params"]["w"][1], P0["w"])
    assert out[1]["error"].startswith("RuntimeError: boom")


def test_crash_keeps_finished_cases_and_reports_the_rest() -> None:
    out = run_in_worker(FAKE, [_case("ok"), _case("crash"), _case("ok")])
    assert "params" in out[0]
    assert "exited with code 3" in out[1]["error"] and "error" in out[2]


def test_timeout_is_an_error_row() -> None:
    out = run_in_worker(FAKE, [_case("hang")], timeout=3)
    assert "timed out" in out[0]["error"]


def test_missing_framework_is_skipped_with_reason(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADAPTER_MISSING", "fakeframework not installed")
    out = run_in_worker(FAKE, [_case("ok")])
    assert out == [{"skipped": "fakeframework not installed"}]
