"""The regression gate end to end: baselines on disk, planted regressions through the real runner and
bench, the CLI, the example workflow and the noise script.

The stand-in adapter plants a divergence (``drift``) and a 30% slowdown (``FAKE_BENCH=slow``); the
framework test plants ``eps=1e-7`` into torch itself. The slowdown test pads each step with a sleep
(``FAKE_BENCH_SLEEP``) so its timings follow the OS timer, not the load on a shared CI machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.adapters import ADAPTERS, AdapterInfo
from harness.bench import run_bench
from harness.cli import main
from harness.gate import gate
from harness.gate.baseline import (
    BaselineError,
    load_baseline,
    load_run_tables,
    save_baseline,
    write_baseline,
)

from .gate_tables import BASE, ENV, OK2, bench_table, conformance, draws
from .runs import write_run


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
    monkeypatch.setenv("FAKE_1", "nudge")  # a change the task hash cannot see: the shards must be rerun
    assert main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report",
                 "--rerun", "all"]) == 0
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bl), "--current", str(run), "--out", str(tmp_path / "g")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## rmsprop-harness gate: FAIL")
    md = (tmp_path / "g" / "gate.md").read_text()
    assert "| divergence | one / fake [float32@cpu] | median_ulp " in md and "the baseline, limit 2x" in md
    assert "two / fake" not in md.split("### Regressions")[1].split("###")[0]  # only the planted case
    # a planted drift (1e-6 relative): float64 fails outright
    monkeypatch.setenv("FAKE_1", "drift")
    main(["run", "--suite", str(fake_suite), "--out", str(run), "--no-progress", "--no-report", "--rerun", "all"])
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


@pytest.mark.slow  # end to end, tens of seconds: run by ./dev test --all and CI
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
    quickstart = (root / "README.md").read_text().split("## Quickstart")[1].split("```bash\n")[1].split("```")[0]
    test_command = quickstart.splitlines()[1].split("#")[0].strip()  # the README's second command: every test
    assert test_command == "./dev test --all" and f"{test_command} -q" in ci
    assert "gate --baseline reports/baseline --current reports/latest --throughput off" in ci
    assert 'bench --ab "$ab_base"' in ci
    assert any(c.startswith('rmsprop-harness bench --ab "$AB_BASE"') for c in commands)
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
    """examples/gate_noise.py (docs/gate.md's false-alarm and power figures) on three synthetic runs."""
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
