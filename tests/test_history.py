"""The results history: a DuckDB store of runs keyed by commit and fingerprint, steps found at the right commit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main as cli
from harness.history.steps import ALPHA, steps
from harness.history.store import HistoryError, Store

from .runs import write_run

pytest.importorskip("duckdb")


def _step(nudge: float):
    def step(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):
        nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
        return param - lr * grad / (np.sqrt(nu) + eps) * nudge, {"nu": nu}

    step.__name__ = "mine"
    return step


def test_ten_real_runs_at_three_commits_and_the_step_at_the_planted_one(tmp_path: Path, capsys) -> None:
    """Ten conformance runs of one implementation filed under commits a, b, c; from b on it rounds worse (a 2-ulp
    nudge per float64 step, still within tolerance): history names b, and only the float64 figures."""
    from harness.conformance.check import conformance

    store = tmp_path / "h.duckdb"
    suite = tmp_path / "small.toml"
    suite.write_text('name = "small"\n[defaults]\nsteps = 40\nshapes = { w = [64], b = [4] }\n'
                     '[[case]]\nname = "own-defaults"\n')
    commits = ["a" * 40] * 3 + ["b" * 40] * 3 + ["c" * 40] * 4
    for i, commit in enumerate(commits):
        out = tmp_path / f"run{i}"
        results = conformance(_step(1.0 if commit.startswith("a") else 1 + 4e-16), preset="torch", suite=suite,
                              out=out)
        assert all(r.status == "ok" for r in results)
        assert cli(["history", "append", str(out), "--store", str(store), "--commit", commit]) == 0
    assert cli(["history", "append", str(tmp_path / "run0"), "--store", str(store)]) == 0  # already in: no-op
    assert "already in" in capsys.readouterr().out
    runs = Store(store).runs()
    assert len(runs) == 10 and runs["commit"].nunique() == 3
    assert cli(["history", "show", "--store", str(store), "--out", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    found = pd.read_csv(tmp_path / "h" / "steps.csv")
    assert len(found) and set(found["first_commit"]) == {"b" * 40}, found
    assert set(found["previous_commit"]) == {"a" * 40}
    assert all(s.endswith("/float64") for s in found["series"]), found  # float32 rounds the nudge away
    assert (found["ratio"] > 1).all()
    assert "first at bbbbbbbbbbbb" in out
    page = (tmp_path / "h" / "history.html").read_text()
    assert "data:image/png;base64," in page and "10 runs at 3 commits" in page
    assert len(list((tmp_path / "h" / "png").glob("*.png"))) >= len(found)


def _bench_run(path: Path, commit: str, started: str, slow: float, rng) -> Path:
    rows = [{"suite": "perf", "bench": "b", "adapter": a, "variant": "v", "device": "cpu", "dtype": "float32",
             "n_params": 1 << 20, "layout": "flat", "status": "ok",
             "median_s": 1e-3 * (slow if a == "torch.foreach" else 1.0) * (1 + 0.03 * rng.standard_normal()),
             "gb_per_s": 10.0} for a in ("torch.foreach", "optax")]
    env = {"git": {"revision": commit, "dirty": False}, "started": started, "fingerprint": "f" * 64,
           "suite": {"name": "perf"}, "packages": {"torch": "2.13.0"}}
    return write_run(path, {"throughput": pd.DataFrame(rows)}, env, kind="bench")


def test_a_planted_throughput_step_among_noise_is_named_and_the_unchanged_point_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    store = Store(tmp_path / "h.duckdb")
    plan = [("a" * 40, 1.0)] * 4 + [("b" * 40, 1.15)] * 4 + [("c" * 40, 1.15)] * 4
    for i, (commit, slow) in enumerate(plan):
        store.append(_bench_run(tmp_path / f"b{i}", commit, f"2026-11-26T10:{i:02d}:00+00:00", slow, rng))
    from harness.history.render import find_steps

    found = find_steps(store.frame())
    median = found[found["metric"] == "median_s"]
    assert list(median["first_commit"]) == ["b" * 40], found
    assert "torch.foreach" in median["series"].item() and median["ratio"].item() == pytest.approx(1.15, rel=0.05)


def test_step_detection_false_alarms_and_power() -> None:
    """Calibration on synthetic series (seeded): false alarms at most about ALPHA per series; a 10% step over 3%
    noise found at the right run in most 30-run histories."""
    rng = np.random.default_rng(3)
    alarms = sum(bool(steps(rng.normal(1.0, 0.05, 12), seed=i)) for i in range(100))
    assert alarms <= 3, alarms  # ALPHA = 1%: 1 expected
    hits = sum([s.index for s in steps(np.r_[rng.normal(1, 0.03, 15), rng.normal(1.1, 0.03, 15)], seed=i)] == [15]
               for i in range(50))
    assert hits >= 38, hits
    assert ALPHA == 0.01
    assert [s.index for s in steps(np.r_[np.full(3, 2.0), np.full(7, 3.0)])] == [3]  # noiseless: any move is real
    assert steps(np.full(10, 3.0)) == []


def test_bad_stores_and_runs_are_one_line(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    assert cli(["history", "show", "--store", str(junk), "--out", str(tmp_path / "o")]) == 2
    assert cli(["history", "show", "--store", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "o")]) == 2
    assert cli(["history", "append", str(tmp_path / "nope"), "--store", str(tmp_path / "s.duckdb")]) == 2
    partial = write_run(tmp_path / "partial", {"summary": pd.DataFrame([{"suite": "s", "case": "c", "adapter": "a",
                                                                         "device": "cpu", "dtype": "float32",
                                                                         "status": "ok"}])},
                        {"git": {"revision": "a" * 40}}, complete=False, planned=2, finished=1)
    with pytest.raises(HistoryError, match="incomplete"):
        Store(tmp_path / "s.duckdb").append(partial)
    err = capsys.readouterr().err
    assert all(line.startswith("rmsprop-harness: error:") for line in err.strip().splitlines()), err
    link = tmp_path / "link.duckdb"
    link.symlink_to(tmp_path / "s.duckdb")
    with pytest.raises(HistoryError, match="symlink"):
        Store(link).frame()


def test_replicate_runs_with_the_same_env_are_two_samples(tmp_path: Path) -> None:
    """Two folders with bitwise-identical tables and env.json (replicates started in the same second) are two runs;
    the same folder appended twice is one."""
    import shutil

    store = Store(tmp_path / "h.duckdb")
    first = _bench_run(tmp_path / "r1", "a" * 40, "2026-11-26T10:00:00+00:00", 1.0, np.random.default_rng(0))
    shutil.copytree(first, tmp_path / "r2")
    assert store.append(first)[1] > 0 and store.append(tmp_path / "r2")[1] > 0
    assert store.append(first)[1] == 0
    assert len(store.runs()) == 2


def test_run_history_appends_the_finished_run_and_show_refuses_a_bad_limit(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[defaults]\nsteps = 5\ndtypes = ["float64"]\n[[case]]\nname = "c"\n')
    store = tmp_path / "h.duckdb"
    assert cli(["run", "--suite", str(suite), "--adapter", "examples.my_rmsprop:make_adapter", "--out",
                str(tmp_path / "out"), "--no-report", "--no-progress", "--history", str(store)]) == 0
    assert "history: " in capsys.readouterr().out
    runs = Store(store).runs()
    assert len(runs) == 1 and runs["kind"].item() == "conformance" and len(runs["commit"].item()) == 40
    assert cli(["history", "show", "--store", str(store), "--limit", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--limit" in capsys.readouterr().err


def test_the_lookback_gate_flags_a_planted_slowdown_and_passes_the_noise(tmp_path: Path, capsys) -> None:
    """Twelve bench runs with 3% noise, then one more of each kind: unchanged passes, +30% on torch fails and names
    the series; the window is the same fingerprint and suite only; a short history is named, never a pass."""
    rng = np.random.default_rng(11)
    store = tmp_path / "h.duckdb"
    for i in range(12):
        assert cli(["history", "append", str(_bench_run(tmp_path / f"b{i}", "a" * 40,
                                                        f"2026-11-26T10:{i:02d}:00+00:00", 1.0, rng)),
                    "--store", str(store)]) == 0
    capsys.readouterr()
    same = _bench_run(tmp_path / "same", "b" * 40, "2026-11-26T11:00:00+00:00", 1.0, rng)
    assert cli(["history", "gate", str(same), "--store", str(store), "--last", "10"]) == 0
    assert "lookback gate: PASS (2 ok" in capsys.readouterr().out
    slow = _bench_run(tmp_path / "slow", "c" * 40, "2026-11-26T11:01:00+00:00", 1.3, rng)
    assert cli(["history", "gate", str(slow), "--store", str(store), "--last", "10"]) == 1
    out = capsys.readouterr().out
    assert "regression: perf/b/torch.foreach/" in out and "optax" not in out.split("lookback gate")[0]
    assert "lookback gate: FAIL (1 regression, 1 ok" in out
    fresh = tmp_path / "fresh.duckdb"  # no history at all: nothing judged, which is not a pass
    assert cli(["history", "gate", str(same), "--store", str(fresh)]) == 1
    out = capsys.readouterr().out
    assert "2 series with too short a history" in out and "FAIL (2 insufficient" in out

