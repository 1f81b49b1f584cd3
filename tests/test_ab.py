"""The paired A/B gate: its verdicts on known numbers, its baseline trees, and end to end on torch with a planted
slowdown inside the adapter (benchmarks/ab_power.py plants the same way)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harness.bench.ab import ABError, Side, base_side, current_side, failed, points, run_ab
from harness.bench.paired import paired_verdict
from harness.process.spawn import ROOT


def _blocks(effect: float, *, blocks: int = 8, pairs: int = 20, block_sd: float = 0.01, pair_sd: float = 0.08,
            seed: int = 0) -> list[np.ndarray]:
    """Synthetic log ratios: a true slowdown, a per-block offset (memory placement) and per-pair noise."""
    rng = np.random.default_rng(seed)
    return [math.log1p(effect) + rng.normal(0, block_sd) + rng.normal(0, pair_sd, pairs) for _ in range(blocks)]


def test_a_clear_slowdown_is_slower_and_its_interval_holds_the_truth() -> None:
    v = paired_verdict(_blocks(0.10))
    assert v.verdict == "slower" and v.low < 1.10 < v.high and 1.05 < v.ratio < 1.15
    assert v.blocks == 8 and v.pairs == 160 and len(v.block_ratios) == 8


def test_no_change_is_same_and_a_speedup_is_faster() -> None:
    assert paired_verdict(_blocks(0.0, seed=1)).verdict == "same"
    assert paired_verdict(_blocks(-0.10, seed=2)).verdict == "faster"


def test_noise_between_blocks_is_what_the_interval_counts() -> None:
    """Pairs inside a block share its process's memory placement: a large block-to-block spread makes the
    verdict inconclusive, however many pairs each block holds."""
    v = paired_verdict(_blocks(0.10, pairs=500, block_sd=0.15, seed=3))
    assert v.verdict == "inconclusive" and v.high / v.low > 1.3


def test_the_tolerance_and_the_number_of_points_widen_what_passes() -> None:
    logs = _blocks(0.03, block_sd=0.005, seed=4)
    assert paired_verdict(logs).verdict == "slower"
    assert paired_verdict(logs, tolerance=0.05).verdict == "same"
    one, many = paired_verdict(logs), paired_verdict(logs, points=50)  # Bonferroni: alpha / points each
    assert many.low < one.low and many.high > one.high


def test_fewer_than_two_blocks_is_an_error_never_a_pass() -> None:
    assert paired_verdict(_blocks(0.0, blocks=1)).verdict == "error"
    assert paired_verdict([]).verdict == "error"


def test_the_false_alarm_rate_of_unchanged_code_is_at_most_alpha() -> None:
    """2000 synthetic gates of an unchanged build, 4 points each (Bonferroni over them): alpha = 1% bounds the
    chance that a gate flags anything; a t interval over blocks keeps it with as few as 4 blocks."""
    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(2000):
        verdicts = [paired_verdict([rng.normal(0, 0.02) + rng.normal(0, 0.1, 20) for _ in range(4)], points=4).verdict
                    for _ in range(4)]
        alarms += "slower" in verdicts
    assert alarms / 2000 <= 0.015


def test_base_is_a_commit_extracted_as_a_source_tree_or_a_folder(tmp_path) -> None:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    side = base_side("HEAD", tmp_path)
    assert side.commit == head and side.root == (tmp_path / "ab-src" / head[:12]).resolve()
    assert (side.root / "harness" / "bench" / "__init__.py").is_file() and (side.root / "reference").is_dir()
    assert not any(p.is_symlink() for p in side.root.rglob("*"))
    assert base_side("HEAD", None).commit == head and not (tmp_path / "x").exists()  # resolved, nothing written
    assert base_side(str(side.root), None).root == side.root  # a folder holding harness/
    with pytest.raises(ABError, match="no such commit, branch or tag"):
        base_side("no-such-ref-anywhere", tmp_path)
    with pytest.raises(ABError, match="not a source tree"):
        base_side(str(tmp_path / "ab-src"), None)


def test_bad_input_is_one_line_and_exit_2(tmp_path) -> None:
    for argv, message in ((["--ab", "no-such-ref-anywhere"], "no such commit"),
                          (["--ab", "HEAD", "--blocks", "1"], "--blocks"),
                          (["--ab", "HEAD", "--overhead"], "--ab takes neither"),
                          (["--ab", "HEAD", "--suite", "perf", "--adapter", "torch.single", "--dtype", "float16",
                            "--ab-alpha", "0"], "--ab-alpha")):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", *argv, "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "o").exists()


def test_a_suite_without_variants_is_refused(tmp_path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('[[bench]]\nadapters = ["torch.foreach"]\nsizes = [1000]\n')
    with pytest.raises(ABError, match="names no variants"):
        points(str(suite))


def _power_script():
    """examples/ab_power.py, whose source trees and planted slowdowns these tests reuse (loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ab_power", ROOT / "examples" / "ab_power.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AB_POWER = _power_script()
STEP = AB_POWER.PLANTS["harness/adapters/torch_adapter.py"]


def _tree(dst, every: int = 0) -> Side:
    """A copy of this checkout's sources; with ``every``, the bench step runs twice every k-th call."""
    return Side("tree", AB_POWER.tree(dst, every))


@pytest.mark.framework
@pytest.mark.slow  # about 20 s: fresh torch workers per block
def test_a_planted_slowdown_inside_the_adapter_fails_the_gate(tmp_path) -> None:
    """Every step run twice, inside the torch adapter. (An unchanged build's false alarms are measured by
    examples/ab_power.py, and .ci/run's own A/B gate against the previous commit is one more such gate per run.)"""
    pytest.importorskip("torch")
    pts = [p for p in points("ab", adapters=["torch.foreach"]) if p.n_params == 10_000]
    base, slow = _tree(tmp_path / "base"), _tree(tmp_path / "slow", every=1)
    # 4 blocks at alpha 0.001: twice the work passes only if the blocks scatter by more than 13% (the ab suite's
    # blocks scatter by 1.5-7% here, docs/ab.md)
    planted = run_ab(base, slow, pts, blocks=4, pairs=10, alpha=0.001)
    row = planted.points.iloc[0]
    assert row["verdict"] == "slower" and 1.7 < row["ratio"] < 2.3 and failed(planted), row.to_dict()
    assert len(planted.samples) == 40 and (planted.samples["first"] == "base").sum() == 20  # the order alternates
    # counted over 10 steps, each doubled: twice the work, exactly (the dispatcher, not a clock)
    assert row["work"] == "more" and row["current_bytes"] == 2 * row["base_bytes"], row.to_dict()


@pytest.mark.framework
def test_the_cli_compares_a_folder_with_the_current_code_and_writes_its_folder(tmp_path) -> None:
    pytest.importorskip("torch")
    _tree(tmp_path / "slow", every=2)  # the *baseline* is slower: the current code is faster
    out = tmp_path / "ab"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--ab", str(tmp_path / "slow"),
                           "--adapter", "torch.foreach", "--blocks", "2", "--pairs", "5", "--ab-alpha", "0.2",
                           "--no-progress", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pd.read_parquet(out / "ab.parquet")
    assert list(table["n_params"]) == [10_000, 100_000] and (table["ratio"] < 0.9).all(), table
    assert set(table["verdict"]) <= {"faster", "inconclusive"}
    assert len(pd.read_parquet(out / "ab_samples.parquet")) == 2 * 2 * 5
    assert "# A/B: current against" in (out / "ab.md").read_text() and (out / "run.json").is_file()


def test_a_missing_adapter_on_both_sides_is_skipped_and_a_gate_of_only_skips_fails(tmp_path) -> None:
    """A side tree without the point's adapter, on both sides, skips the point (a framework not installed)."""
    tree = tmp_path / "t" / "harness" / "adapters"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("ADAPTERS = {}\n")
    (tree.parent / "__init__.py").write_text("")
    (tree / "base.py").write_text("class BenchPoint:\n    pass\n")
    side = Side("base", tmp_path / "t")
    pts = [p for p in points("ab", adapters=["torch.foreach"]) if p.n_params == 10_000]
    result = run_ab(side, Side("current", side.root), pts, blocks=2, pairs=3)
    row = result.points.iloc[0]
    assert row["verdict"] == "skipped" and "no adapter 'torch.foreach'" in row["reason"] and failed(result)
    assert current_side().root == ROOT


def test_pinning_moves_every_thread_of_both_sides_to_one_core() -> None:
    """--ab-pin: after the build, both workers (every thread) run on one core; unpinned they keep every core."""
    from harness.bench.ab import _Pair

    side = current_side()
    pair = _Pair((side, side), {})
    try:
        assert all(os.sched_getaffinity(w.proc.pid) == os.sched_getaffinity(0) for w in pair.workers)
        core = max(os.sched_getaffinity(0))
        pair.pin(core)
        for w in pair.workers:
            threads = [int(t) for t in os.listdir(f"/proc/{w.proc.pid}/task")]
            assert threads and all(os.sched_getaffinity(t) == {core} for t in threads)
    finally:
        pair.close()


EXTRA_PASS = ("        def extra():\n            opt.step()\n            with torch.no_grad():\n"
              "                torch._foreach_mul_(params, 1.0)\n\n        return Stepper(extra, sync, peak)\n")


@pytest.mark.framework
def test_an_extra_pass_over_the_parameters_is_counted_more_work_with_no_noise(tmp_path) -> None:
    """torch's dispatcher sees one more op, reading and writing every parameter once more, on the planted side;
    that fails the gate whatever the timing says."""
    pytest.importorskip("torch")
    base = _tree(tmp_path / "base")
    planted = _tree(tmp_path / "extra")
    path = planted.root / "harness" / "adapters" / "torch_adapter.py"
    path.write_text(path.read_text().replace(STEP, EXTRA_PASS))
    pts = [p for p in points("ab", adapters=["torch.foreach"]) if p.n_params == 10_000]
    result = run_ab(base, planted, pts, blocks=2, pairs=3, count=2)
    row = result.points.iloc[0]
    assert row["counter"] == "torch dispatch" and row["work"] == "more" and failed(result), row.to_dict()
    assert row["current_ops"] == row["base_ops"] + 1
    assert row["current_bytes"] - row["base_bytes"] == 2 * 4 * 10_000  # read and write every parameter once


@pytest.mark.framework
def test_optax_work_is_counted_by_xla(tmp_path) -> None:
    pytest.importorskip("optax")
    pts = [p for p in points("ab", adapters=["optax"]) if p.n_params == 10_000]
    side = Side("base", ROOT)
    row = run_ab(side, Side("current", ROOT), pts, blocks=2, pairs=3, count=2).points.iloc[0]
    assert row["counter"] == "xla cost analysis" and row["work"] == "same" and row["base_ops"] == 1
    assert row["base_bytes"] >= 5 * 4 * 10_000  # at least p, g, v read and p, v written
