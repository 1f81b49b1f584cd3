"""`rmsprop-harness bench`: bytes model, layouts, the timer's protocol, suites, the worker and its report.

Nothing here asserts a speed (performance claims live in the benchmark and its report, not in
tests); the timer is checked for what it must do (synchronise each block, take the samples
asked for, exclude the first step), not for how fast anything is.
"""

from __future__ import annotations

import importlib.util
import math
import time

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.adapters import ADAPTERS, AdapterInfo
from harness.adapters.base import Stepper
from harness.bench import (
    THROUGHPUT_COLUMNS,
    BenchError,
    bytes_per_param,
    load_bench_suite,
    measure,
    model_shapes,
    plan,
    run_bench,
    split_shapes,
)
from harness.cli import main
from harness.conformance.suite import SuiteError, load_suite
from harness.report import write_report
from reference import presets


def test_bytes_per_param_follow_the_semantics() -> None:
    assert bytes_per_param(presets.torch(), "float32") == 20  # read p, g, v; write p, v
    assert bytes_per_param(presets.torch(momentum=0.9), "float32") == 28
    assert bytes_per_param(presets.torch(momentum=0.9, centered=True), "float32") == 36
    assert bytes_per_param(presets.optax(1e-3), "float64") == 40
    assert bytes_per_param(None, "float32") == 8  # a copy: read + write
    assert bytes_per_param(None, "float32", "add") == 12  # a += b: read two, write one


@pytest.mark.parametrize("n", [1, 7, 1000, 12345, 100_000, 10_000_000])
def test_model_layout_is_exact_and_model_like(n) -> None:
    shapes = model_shapes(n)
    assert sum(math.prod(s) for s in shapes.values()) == n
    if n >= 1000:
        assert 8 <= len(shapes) <= 9 and shapes["layer0.weight"][0] == shapes["layer0.weight"][1]
    split = split_shapes(n, min(n, 10))
    assert sum(math.prod(s) for s in split.values()) == n and len(split) == min(n, 10)


def test_measure_synchronises_every_block_and_takes_the_samples_asked_for() -> None:
    calls = {"step": 0, "sync": 0, "pending": 0}

    def step() -> None:
        calls["step"] += 1
        calls["pending"] += 1
        time.sleep(0.0002)

    def sync() -> None:
        calls["sync"] += 1
        calls["pending"] = 0

    t = measure(Stepper(step, sync), min_time=0.05, repeats=5, min_warmup=0.01)
    assert t.samples >= 5 and t.steps_per_sample >= 1
    assert t.q1_s <= t.median_s <= t.q3_s and t.iqr_s >= 0
    assert t.median_s >= 0.0002  # sleep never returns early: a lower bound, not a speed claim
    assert calls["pending"] == 0  # no step is left unsynchronised when a sample's clock stops
    assert calls["sync"] >= t.samples + 2  # one before, the first step, the warm-up blocks, each sample


def test_a_measurement_keeps_raw_samples_and_merges_rounds_by_key() -> None:
    from dataclasses import FrozenInstanceError

    from harness.base.measurement import Measurement

    a = Measurement(sample_s=(3.0, 1.0, 2.0), key=("p",), first_step_s=5.0)
    b = Measurement(sample_s=(4.0, 6.0, 5.0), key=("p",), first_step_s=7.0)
    other = Measurement(sample_s=(9.0,), key=("q",), first_step_s=9.0)
    assert (a.median_s, a.q1_s, a.q3_s, a.samples, a.compile_s) == (2.0, 1.5, 2.5, 3, 3.0)
    with pytest.raises(FrozenInstanceError):
        a.key = ("x",)  # type: ignore[misc]
    pooled, q = Measurement.merge([a, other, b])
    assert pooled.key == ("p",) and pooled.sample_s == (3.0, 1.0, 2.0, 4.0, 6.0, 5.0)  # in order, nothing dropped
    assert pooled.round_median_s == (2.0, 5.0) and pooled.rounds == 2 and pooled.median_s == 3.5
    assert pooled.first_step_s == 6.0 and q.sample_s == (9.0,) and q.rounds == 1
    [again] = Measurement.merge([pooled, Measurement(sample_s=(7.0,), key=("p",), first_step_s=6.0)])
    assert again.round_median_s == (2.0, 5.0, 7.0)  # merging a merge keeps its rounds
    row = {"sample_s": [1.0, 2.0], "median_s": 1.5, "first_step_s": 3.0, "round_median_s": None}
    assert Measurement.from_row(row).sample_s == (1.0, 2.0)
    assert Measurement.from_row({"median_s": 1.5, "sample_s": None}).sample_s == (1.5,)  # an older row: its median


@pytest.mark.parametrize(("body", "message"), [
    ("[[bench]]\nsizes = [0]\n", "bench[0].sizes: expected whole numbers of parameters >= 1"),
    ("[[bench]]\nadapters = ['mxnet']\n", "bench[0].adapters: unknown adapter 'mxnet'"),
    ("[[bench]]\nsettings = { alpha = 0.9 }\n", "bench[0].settings: expected a table of lr, decay"),
    ("[[bench]]\nrepeats = 1\n", "bench[0].repeats: expected an integer in [3, 1000]"),
    ("[[bench]]\ntensors = [0]\n", "bench[0].tensors: expected a list of tensor counts in [1, 100000]"),
    ("[[bench]]\nsettings = { weight_decay = 0.1 }\nadapters = ['tf1']\n", "tf1: unsupported: weight_decay"),
    ("[[case]]\nname = 'a'\n", "case: unknown key; a conformance suite is run by rmsprop-harness run"),
    ("[[bench]]\nsizse = [1]\n", "bench[0].sizse: unknown key"),
    ("rounds = 0\n[[bench]]\n", "rounds: expected an integer in [1, 100], got 0"),
    ("threads = 'all'\n[[bench]]\n", "threads: expected an integer >= 1, got 'all'"),
])
def test_bad_bench_suites_are_one_line(tmp_path, body, message) -> None:
    path = tmp_path / "b.toml"
    path.write_text(body)
    with pytest.raises(BenchError) as exc:
        load_bench_suite(path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_gate_suite_pins_threads_and_rounds() -> None:
    from harness.bench.run import _bench_env

    suite = load_bench_suite("perf-gate")
    assert suite.rounds == 3 and suite.threads == 1
    env = _bench_env({"KERAS_BACKEND": "jax", "OMP_NUM_THREADS": "1"}, 1)
    assert env["OMP_NUM_THREADS"] == "1" and "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    assert env["KERAS_BACKEND"] == "jax" and "OMP_NUM_THREADS" not in _bench_env({"OMP_NUM_THREADS": "1"})


def test_perf_suite_plans_every_adapter_and_a_copy_roofline_per_size() -> None:
    suite = load_bench_suite("perf")
    jobs = plan(suite)
    adapters = {j.adapter for j in jobs}
    assert set(ADAPTERS) - {"keras.jax", "keras.torch", "keras.tensorflow"} <= adapters
    assert {"keras.tensorflow", "keras.jax", "keras.torch", "copy.numpy", "copy.torch"} <= adapters
    copy = next(j for j in jobs if j.adapter == "copy.numpy")
    sizes = {n for e in suite.entries for n in e.sizes}
    assert [s["x"][0] for _, s in copy.layouts] == sorted(sizes)
    with pytest.raises(SuiteError, match="a benchmark suite: run it with rmsprop-harness bench --suite perf"):
        load_suite("perf")
    # --device gpu: the roofline is measured by the kernels that run there (torch), no host-only numpy row
    gpu = {j.adapter: j.devices for j in plan(suite, devices=["gpu"]) if j.bench == "roofline"}
    assert gpu == {"copy.torch": ["gpu"]}
    both = {j.adapter: j.devices for j in plan(suite, devices=["cpu", "gpu"]) if j.bench == "roofline"}
    assert both == {"copy.torch": ["cpu", "gpu"], "copy.numpy": ["cpu"]}


BENCH = """
name = "fake-bench"
[[bench]]
name = "size"
adapters = ["fake"]
sizes = [1000, 20000]
min_time = 0.02
repeats = 3
settings = { lr = 1e-3 }
[[bench]]
name = "tensors"
adapters = ["fake"]
sizes = [20000]
tensors = [1, 10]
min_time = 0.02
repeats = 3
"""


@pytest.fixture
def fake_bench(monkeypatch, tmp_path):
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake",
                                                      devices=("cpu",)))
    path = tmp_path / "bench.toml"
    path.write_text(BENCH)
    return path


def test_bench_rows_roofline_and_report(fake_bench, tmp_path) -> None:
    out = tmp_path / "bench"
    result = run_bench(fake_bench, out=out, adapters=["fake"])
    tp = pd.read_parquet(out / "throughput.parquet")
    assert list(tp.columns) == THROUGHPUT_COLUMNS and len(tp) == len(result.throughput)
    fake = tp[tp["adapter"] == "fake"]
    assert set(fake["status"]) == {"ok"} and len(fake) == 4
    assert set(fake["bytes_per_param"]) == {20}
    assert sorted(fake["n_tensors"]) == [1, 9, 9, 10]  # the model layout (9 tensors at these sizes), then 1, 10
    assert (fake["gb_per_s"] - fake["params_per_s"] * 20 / 1e9).abs().max() < 1e-9
    copies = tp[(tp["framework"] == "copy") & (tp["status"] == "ok")]
    assert set(copies["n_params"]) == {1000, 20000}
    for r in fake.itertuples():  # the roofline is the fastest copy at the same size, device and dtype
        best = copies[(copies["n_params"] == r.n_params)]["gb_per_s"].max()
        assert r.copy_gb_per_s == pytest.approx(best) and r.roofline_fraction == pytest.approx(r.gb_per_s / best)
    assert (fake["peak_mem_bytes"] > 0).all() and (fake["mem_delta_bytes"] >= 0).all()
    assert (fake["q1_s"] <= fake["median_s"]).all() and (fake["median_s"] <= fake["q3_s"]).all()
    write_report(out)
    md = (out / "report.md").read_text()
    assert md.startswith("# RMSprop throughput: suite `fake-bench`") and "## Every adapter and variant at 2e+04" in md
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    assert sum(t.type == "table_open" for t in tokens) >= 1
    html = (out / "report.html").read_text()
    assert 'alt="throughput vs size"' in html and 'alt="step time vs number of tensors"' in html
    assert (out / "throughput.csv").is_file()


@pytest.mark.slow  # a worker per failure mode, ~5 s each: run by ./dev test --all and CI
@pytest.mark.parametrize(("behaviour", "reason"), [("raise", "MemoryError: pretend the device is full"),
                                                     ("crash", "worker exited with 4")])
def test_a_failing_adapter_is_an_error_row_and_the_rest_goes_on(fake_bench, tmp_path, monkeypatch, behaviour,
                                                                 reason) -> None:
    monkeypatch.setenv("FAKE_BENCH", behaviour)
    result = run_bench(fake_bench, out=None, adapters=["fake"])
    tp = result.throughput
    errors = tp[tp["adapter"] == "fake"]
    assert set(errors["status"]) == {"error"} and errors["reason"].str.contains(reason).all()
    assert (tp[tp["adapter"] == "copy.numpy"]["status"] == "ok").all()  # other workers still measured


@pytest.mark.slow  # ~6 s of bench workers: run by ./dev test --all and CI
def test_what_an_adapter_prints_is_never_taken_for_a_result(fake_bench, monkeypatch) -> None:
    """Rows travel on their own pipe (`harness.process.channel`), not stdout: a printed 'BENCH {...}' is just output."""
    monkeypatch.setenv("FAKE_BENCH", "noisy")
    tp = run_bench(fake_bench, out=None, adapters=["fake"]).throughput
    assert "forged" not in set(tp["adapter"]) and set(tp.loc[tp["adapter"] == "fake", "status"]) == {"ok"}


def test_an_explicit_device_that_measured_nothing_is_exit_2(fake_bench, tmp_path, capsys) -> None:
    argv = ["bench", "--suite", str(fake_bench), "--adapter", "fake", "--out", str(tmp_path / "b"), "--no-progress",
            "--no-report", "--min-time", "0.01"]
    assert main([*argv, "--device", "gpu"]) == 2
    assert capsys.readouterr().err.strip() == ("rmsprop-harness: error: --device gpu: nothing was measured on it (no "
                                               "gpu visible; --device auto measures where a device is visible)")
    assert main([*argv, "--device", "auto"]) == 0


def test_a_malformed_row_from_a_worker_is_an_error_row() -> None:
    from harness.bench.run import _clean_row

    assert _clean_row({"adapter": "a", "status": "ok", "median_s": "fast"})["status"] == "error"
    assert _clean_row(["not", "a", "row"])["status"] == "error"
    assert _clean_row({"adapter": "a", "status": "great"})["reason"] == "unknown status 'great'"
    assert _clean_row({"adapter": "a", "status": "ok", "sample_s": [1e-3, "x"]})["status"] == "error"


@pytest.mark.framework
def test_torch_and_optax_variants_run() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("optax")
    from harness.bench import BenchEntry, BenchSuite

    entry = BenchEntry(name="smoke", adapters=("torch.single", "torch.foreach", "optax", "tf.raw"),
                       variants=("for-loop", "foreach", "jit", "jit+donate", "tf.function"), sizes=(1000,),
                       settings={"lr": 1e-3}, min_time=0.01, repeats=3)
    result = run_bench(BenchSuite(name="smoke", entries=(entry,)), out=None)
    ok = result.throughput[result.throughput["status"] == "ok"]
    got = set(zip(ok["adapter"], ok["variant"], strict=True))
    assert {("torch.single", "for-loop"), ("torch.foreach", "foreach"), ("optax", "jit"),
            ("optax", "jit+donate")} <= got
    if importlib.util.find_spec("tensorflow") is not None:
        assert ("tf.raw", "tf.function") in got
    assert (ok["compile_s"] >= 0).all() and ok["roofline_fraction"].notna().all()


@pytest.mark.parametrize(("argv", "message"), [
    (["--suite", "nothing"], "nothing: no such bench suite"),
    (["--adapter", "mxnet"], "unknown adapter 'mxnet'"),
    (["--min-time", "0"], "--min-time 0.0 must be in (0, 60]"),
    (["--repeats", "2"], "--repeats 2 must be in [3, 1000]"),
    (["--device", "tpu"], "--device 'tpu' is not a device"),
    (["--rounds", "0"], "--rounds 0 must be in [1, 100]"),
    (["--threads", "0"], "--threads 0 must be in [1, 1024]"),
])
def test_bench_cli_bad_input(argv, message, capsys, tmp_path) -> None:
    assert main(["bench", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rmsprop-harness: error: ") and message in err and "\n" not in err, err


@pytest.mark.framework
def test_overhead_benchmark_produces_paired_samples() -> None:
    pytest.importorskip("torch")
    from harness.bench import overhead_summary, run_overhead

    frame = run_overhead(sizes=(1000,), pairs=4, min_time=0.01)
    assert set(frame["kind"]) == {"timer", "setup", "control"} and len(frame) == 12
    assert (frame["harness_s"] > 0).all() and (frame["bare_s"] > 0).all()
    summary = overhead_summary(frame)
    assert set(summary["kind"]) == {"timer", "setup", "control"} and (summary["pairs"] == 4).all()


def test_the_timer_takes_the_devices_own_clock_when_the_stepper_has_one() -> None:
    """A GPU step (torch: CUDA events, `Stepper.device_time`) is timed by the device, not by the host's
    perf_counter: here a stand-in device that takes 2 ms per step while the host returns at once."""
    from harness.bench.timer import measure

    calls = []
    stepper = Stepper(lambda: None, device_time=lambda n: calls.append(n) or 2e-3 * n)
    m = measure(stepper, min_time=0.01, repeats=3, max_warmup=0.05, min_warmup=0.0)
    assert m.median_s == pytest.approx(2e-3) and m.first_step_s == pytest.approx(2e-3) and calls[0] == 1


def test_the_gpu_suite_plans_gpu_points_only() -> None:
    suite = load_bench_suite("perf-gpu")
    jobs = plan(suite)
    assert {j.adapter for j in jobs if j.bench != "roofline"} == {"torch.foreach", "torch.capturable", "optax"}
    assert all(list(j.devices) == ["gpu"] for j in jobs if j.bench != "roofline")


def test_bench_history_appends_the_finished_bench(fake_bench, tmp_path, capsys) -> None:
    pytest.importorskip("duckdb")
    from harness.history.store import Store

    store = tmp_path / "h.duckdb"
    argv = ["bench", "--suite", str(fake_bench), "--adapter", "fake", "--no-progress", "--no-report",
            "--out", str(tmp_path / "b"), "--history", str(store)]
    assert main(argv) == 0
    assert "points appended to" in capsys.readouterr().out
    runs = Store(store).runs()
    assert list(runs["kind"]) == ["bench"] and runs["suite"].iloc[0] == "fake-bench"
    series = set(Store(store).frame()["series"])
    assert any("/fake/" in s for s in series) and len(series) >= 4
