"""Beyond one run: shards, resume after kill -9, --shard k/n and merge, the Ray executor, named environments
and the semantic timeline (docs/distributed.md).

The conformance tests use the stand-in adapter (`tests.fake_adapter`: the float64 reference in a worker
process), so they cost worker start-ups, not framework imports. Tables are compared without their
timing columns (`schema.TIMINGS`), which are the only ones two runs of one task may differ in.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.adapters import ADAPTERS, AdapterInfo
from harness.base import envs, runfolder, schema
from harness.base.shards import Shard, ShardStore, spec_hash
from harness.cli import main
from harness.conformance.merge import MergeError, merge
from harness.conformance.runner import run_suite
from harness.conformance.units import parse_shard
from reference.errors import InputError

SUITE = """
name = "sharded"
[defaults]
adapters = ["fake"]
steps = 40
dtypes = ["float32", "float64"]
shapes = { w = [6, 4], b = [4] }
[[case]]
name = "one"
seed = 1
args.fake = { lr = 0.01 }
[[case]]
name = "two"
seed = 2
args.fake = { lr = 0.001, momentum = 0.9 }
[[case]]
name = "three"
seed = 3
args.fake = { lr = 0.01, centered = true }
[[case]]
name = "four"
seed = 4
spec = { lr = 0.01, decay = 0.9 }
[[parity]]
name = "pair"
settings = { lr = 0.01 }
presets = ["torch", "keras_jax"]
steps = 20
"""


@pytest.fixture
def suite(monkeypatch, tmp_path) -> Path:
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    path = tmp_path / "sharded.toml"
    path.write_text(SUITE)
    return path


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    loaded = runfolder.load(folder)
    return {name: frame.drop(columns=list(schema.TIMINGS.get(name, ()))) for name, frame in loaded.tables.items()}


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


# ------------------------------------------------------------------------ shards
def test_a_shard_keeps_every_float_bit_and_refuses_edits(tmp_path) -> None:
    values = [0.1, 1 / 3, np.float32(0.1), np.float64(np.nextafter(1.0, 2.0)), math.nan, math.inf, -0.0, 5e-324]
    spec = {"kind": "conformance", "case": "x"}
    shard = Shard(hash=spec_hash(spec), spec=spec, order=3, status="ok",
                  tables={"summary": [{"max_abs_err": v, "steps": np.int64(7)} for v in values]})
    back = Shard.decode(shard.encode())
    for v, row in zip(values, back.tables["summary"], strict=True):
        got = row["max_abs_err"]
        assert (math.isnan(got) and math.isnan(v)) or (got == float(v) and math.copysign(1, got) == math.copysign(1, v))
    assert back.tables["summary"][0]["steps"] == 7
    store = ShardStore(tmp_path)
    store.write(shard)
    assert store.read(shard.hash).tables == back.tables
    edited = json.loads(store.file(shard.hash).read_text())
    edited["spec"]["case"] = "y"  # the spec no longer matches its hash: not a result of this task
    store.file(shard.hash).write_text(json.dumps(edited))
    assert store.read(shard.hash) is None
    with pytest.raises(InputError, match="does not match its hash"):
        list(store)
    store.file(shard.hash).write_text("{\"format\": \"rmsprop-harness-shard\"")  # truncated by hand
    assert store.read(shard.hash) is None


def test_shard_option_bad_input() -> None:
    assert parse_shard("2/3") == (None, 2, 3) and parse_shard(None) is None
    assert parse_shard("gpu") == ("gpu", 1, 1) and parse_shard("cpu:1/2") == ("cpu", 1, 2)
    for bad in ("0/3", "4/3", "1/0", "a/b", "1", "1/3/4", "tpu", "gpu:", "gpu:0/2", ""):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


# ------------------------------------------------------------ shard k/n and merge
def test_sharded_and_merged_runs_give_the_tables_of_one_run(suite, tmp_path, capsys) -> None:
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "whole"), "--no-progress", "--no-report"]) == 0
    whole = tables(tmp_path / "whole")
    assert len(whole["summary"]) == 8 and len(whole["parity"])
    for n in (1, 2, 3):
        parts = [tmp_path / f"n{n}-{k}" for k in range(1, n + 1)]
        for k, part in enumerate(parts, 1):
            assert main(["run", "--suite", str(suite), "--out", str(part), "--no-progress", "--no-report",
                         "--shard", f"{k}/{n}"]) == 0
        sizes = [len(json.loads((p / "env.json").read_text())["plan"]["units"]) for p in parts]
        assert len(set(sizes)) == 1  # every part records the whole plan
        assert main(["merge", *map(str, parts), "--out", str(tmp_path / f"merged{n}"), "--no-report"]) == 0
        assert_same(tables(tmp_path / f"merged{n}"), whole)
        units = sizes[0]
        assert f"{units} of {units} tasks" in capsys.readouterr().out
    # a part missing: the merge says so, is incomplete, exits 1
    assert main(["merge", str(tmp_path / "n3-1"), str(tmp_path / "n3-2"), "--out", str(tmp_path / "partial"),
                 "--no-report"]) == 1
    assert "tasks of the plan are in none of the folders" in capsys.readouterr().err
    assert not runfolder.load(tmp_path / "partial").complete


def test_merge_refuses_a_conflicting_duplicate_and_another_plan(suite, tmp_path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        main(["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-report", "--case", "one"])
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "same"), "--no-report"]) == 0  # equal duplicates
    store = ShardStore(b, create=False)
    shard = next(s for s in store if s.tables.get("summary"))
    shard.tables["summary"][0]["max_abs_err"] += 1e-9  # the same task, another result
    store.write(shard)
    capsys.readouterr()
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with different results" in err and "one fake" in err
    main(["run", "--suite", str(suite), "--out", str(tmp_path / "c"), "--no-progress", "--no-report", "--case", "two"])
    with pytest.raises(MergeError, match="another plan"):
        merge([a, tmp_path / "c"], tmp_path / "m2")
    with pytest.raises(MergeError, match="one of the folders"):
        merge([a, tmp_path / "c"], a)
    capsys.readouterr()
    assert main(["merge", str(a), str(tmp_path / "nowhere"), "--out", str(tmp_path / "m3")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run folder" in err


# ----------------------------------------------------------------------- resume
def test_a_rerun_reuses_valid_shards_only(suite, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    assert run_suite(suite, out=out).env["resumed"] == 0
    before = tables(out)
    again = run_suite(suite, out=out)
    units = again.env["plan"]["selected"]
    assert again.env["resumed"] == units == len(again.env["plan"]["units"])
    assert_same(tables(out), before)
    store = ShardStore(out, create=False)
    moved = next(s for s in store if s.tables.get("summary"))
    moved.machine = "another machine"  # a shard from elsewhere is not reused here
    store.write(moved)
    assert run_suite(suite, out=out).env["resumed"] == units - 1
    kept = sum(s.status in ("ok", "unsupported", "done") for s in store)  # what --rerun failed keeps
    monkeypatch.setenv("FAKE_2", "drift")  # invisible to the hash: --rerun failed keeps it, --rerun all does not
    assert run_suite(suite, out=out, rerun="failed").env["resumed"] == kept
    result = run_suite(suite, out=out, rerun="all")
    assert result.env["resumed"] == 0 and (result.summary["status"] == "fail").sum() == 1  # float64 fails
    monkeypatch.delenv("FAKE_2")
    fixed = run_suite(suite, out=out, rerun="failed")
    assert fixed.env["resumed"] == kept - 1 and (fixed.summary["status"] != "fail").all()


@pytest.mark.slow
def test_resume_after_kill_9_at_random_points_gives_identical_tables(suite, tmp_path, monkeypatch) -> None:
    """Ten kill -9s of a run at random instants (a forked driver; its workers die with it), each resumed by the
    same command: the tables equal an uninterrupted run's."""
    monkeypatch.setenv("FAKE_SLEEP", "0.15")
    for seed in (1, 2, 3, 4):  # every task takes a while: kills land between and inside tasks
        monkeypatch.setenv(f"FAKE_{seed}", "sleep")
    monkeypatch.setenv("RMSPROP_HARNESS_PUBLISH_EVERY", "0")
    args = ["run", "--suite", str(suite), "--no-progress", "--no-report", "--jobs", "1"]
    started = time.monotonic()
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    took = time.monotonic() - started
    whole = tables(tmp_path / "whole")
    rng = random.Random(19)
    reused = []
    for trial in range(10):
        out = tmp_path / f"killed{trial}"
        pid = os.fork()
        if pid == 0:  # the driver to kill
            try:
                os.setpgid(0, 0)
                os._exit(main([*args, "--out", str(out)]))
            finally:
                os._exit(99)
        time.sleep(rng.uniform(0.05, took))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert main([*args, "--out", str(out)]) == 0
        assert_same(tables(out), whole)
        reused.append(json.loads((out / "env.json").read_text())["resumed"])
    units = json.loads((tmp_path / "whole" / "env.json").read_text())["plan"]["selected"]
    assert max(reused) > 0 and min(reused) < units, reused  # some kills came late, some early


# ------------------------------------------------------------------- ray
def test_the_ray_executor_without_ray_is_one_line(suite, tmp_path, capsys, monkeypatch) -> None:
    import harness.conformance.runner as runner

    monkeypatch.setattr(runner, "ray_available", lambda: "--executor ray needs Ray: pip install 'rmsprop-harness[ray]'")
    out = tmp_path / "never"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs Ray" in err and not out.exists()


@pytest.mark.slow
def test_the_ray_executor_gives_the_local_tables(suite, tmp_path) -> None:
    pytest.importorskip("ray")
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "local"), "--no-progress", "--no-report"]) == 0
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "ray"), "--no-progress", "--no-report",
                 "--executor", "ray", "--jobs", "2"]) == 0
    assert_same(tables(tmp_path / "ray"), tables(tmp_path / "local"))
    env = json.loads((tmp_path / "ray" / "env.json").read_text())
    assert env["plan"]["executor"] == "ray" and env["complete"]


# ----------------------------------------------------------- environments
def test_environment_specs_and_bad_input(suite, tmp_path, capsys) -> None:
    from harness.conformance.units import environment_adapters

    env = envs.Environment.from_spec("optax==0.1.7+jax==0.4.30")
    assert env.name == "optax-0.1.7+jax-0.4.30" and env.distributions == ("optax", "jax")
    builtin = [a for a in ADAPTERS if a != "fake"]
    assert environment_adapters(envs.Environment.from_spec("jax==0.6.2"), builtin) == ["keras.jax", "optax",
                                                                                       "jax_example"]
    assert environment_adapters(envs.Environment.from_spec("keras==3.0.5"), builtin) == [
        "keras.tensorflow", "keras.jax", "keras.torch"]
    assert environment_adapters(envs.Environment.from_spec("optax==0.2.3"), builtin) == ["optax"]
    for bad in ("-e git+https://x", "optax @ https://x", "../local", "optax==0.1.7; rm"):
        with pytest.raises(InputError):
            envs.Environment.from_spec(bad)
    bad_suite = tmp_path / "bad.toml"
    bad_suite.write_text(SUITE + '\n[environments.old]\npackages = ["optax==0.1.7"]\npins = 1\n')
    assert main(["run", "--suite", str(bad_suite), "--dry-run"]) == 2
    assert "unknown key 'pins'" in capsys.readouterr().err
    assert main(["run", "--suite", str(suite), "--env", "optax==0.1.7", "--dry-run"]) == 2
    assert "no adapter of this run uses it" in capsys.readouterr().err
    assert main(["timeline", "--implementation", "nothing", "--versions", "1,2"]) == 2
    assert main(["timeline", "--implementation", "optax", "--versions", "0.2.4"]) == 2
    assert "at least two versions" in capsys.readouterr().err


@pytest.mark.slow
def test_a_version_matrix_and_its_timeline(tmp_path, monkeypatch, capsys) -> None:
    """optax 0.2.3 and 0.2.4 from the package registry, each in its own cached environment: the timeline finds
    eps_in_sqrt and bias_correction appearing at 0.2.4 and every other case bitwise unchanged."""
    pytest.importorskip("optax")
    monkeypatch.setenv(envs.CACHE_ENV, str(tmp_path / "envs"))
    out = tmp_path / "timeline"
    code = main(["timeline", "--implementation", "optax", "--versions", "0.2.3,0.2.4", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    table = pd.read_parquet(out / "timeline.parquet")
    appeared = table[table["change"] == "appeared"]
    assert sorted(set(appeared["knob"])) == ["bias_correction", "eps_in_sqrt"]
    assert set(appeared["to_version"]) == {"0.2.4"}
    assert set(table[table["change"] != "appeared"]["change"]) == {"none"}
    installed = json.loads((out / "env.json").read_text())["environments"]
    assert installed["optax-0.2.3"]["installed"] == {"optax": "0.2.3"}
    assert "## Semantic timeline" in (out / "report.md").read_text()
    summary = pd.read_parquet(out / "summary.parquet")
    assert set(summary["adapter"]) == {"optax@optax-0.2.3", "optax@optax-0.2.4"}


def test_the_timeline_classifies_each_version_step() -> None:
    """none (bitwise the same figures), numerics (a figure differs; identify's knob), appeared (the argument the
    older version lacks), status (only the verdict changed), missing (a version without the row)."""
    from harness.conformance.timeline import changes, with_knobs

    plan = {"implementation": "optax", "versions": ["1", "2", "3"], "environments": ["o-1", "o-2", "o-3"]}

    def row(case, env, status, err=0.0, reason=""):
        return {"case": case, "adapter": f"optax@{env}", "device": "cpu", "dtype": "float64", "status": status,
                "reason": reason, "worst_budget_ratio": err, "max_abs_err": err}

    no_arg = "unsupported: no argument 'eps_in_sqrt' in this version (optax 1)"
    summary = pd.DataFrame([
        row("same", "o-1", "ok", 1.0), row("same", "o-2", "ok", 1.0), row("same", "o-3", "ok", 1.0),
        row("knob", "o-1", "unsupported", math.nan, no_arg), row("knob", "o-2", "ok", 2.0),
        row("knob", "o-3", "ok", 3.0),
        row("verdict", "o-1", "error", math.nan, "ValueError"), row("verdict", "o-2", "ok", 1.0),
    ])
    divergence = pd.DataFrame([{"case": r["case"], "adapter": r["adapter"], "device": "cpu", "dtype": "float64",
                                "step": s, "max_abs_err": r["max_abs_err"] * s, "max_rel_err": 0.0, "max_ulp": 0.0,
                                "median_ulp": 0.0} for r in summary.to_dict("records") if r["status"] == "ok"
                               for s in (1, 5)])
    table = with_knobs(changes(summary, divergence, plan),
                       {("knob", "optax", "2", "3"): "eps_placement: inside -> outside"})
    got = {(r.case, r.from_version, r.to_version): (r.change, r.knob) for r in table.itertuples()}
    assert got == {("same", "1", "2"): ("none", ""), ("same", "2", "3"): ("none", ""),
                   ("knob", "1", "2"): ("appeared", "eps_in_sqrt"),
                   ("knob", "2", "3"): ("numerics", "eps_placement: inside -> outside"),
                   ("verdict", "1", "2"): ("status", ""), ("verdict", "2", "3"): ("missing", "")}
    assert list(table.columns) == schema.TIMELINE


def test_named_environments_plan_side_by_side_rows(suite, tmp_path, capsys) -> None:
    """A suite's [environments] table adds each task again in the environment, labelled adapter@environment;
    the hash of a task differs per environment (its result is another version's)."""
    from harness.conformance.runner import prepare
    from harness.conformance.units import plan_units

    path = tmp_path / "envs.toml"
    path.write_text(SUITE + '\n[environments.older]\npackages = ["numpy==1.26.4"]\nadapters = ["fake"]\n')
    loaded, tasks = prepare(path, devices=["cpu"])
    labels = [p.label for p in tasks]
    assert labels[:2] == ["fake", "fake@older"] and len(labels) == 16
    units = plan_units(loaded, tasks, list(loaded.environments), parity=False, training=False)
    assert len({u.hash for u in units}) == len(units) == 16
    assert main(["run", "--suite", str(path), "--device", "cpu", "--dry-run"]) == 0
    assert "fake@older" in capsys.readouterr().out


def test_task_hashes_do_not_depend_on_the_process() -> None:
    """A task's hash is the same in every process (a frozenset's repr follows the string hash seed, so the
    spec holds the reference's knobs): otherwise a resume or a merge would find nothing to reuse."""
    import subprocess
    import sys

    code = ("from harness.conformance.runner import prepare\n"
            "from harness.conformance.units import plan_units\n"
            "suite, tasks = prepare('seed')\n"
            "print(','.join(u.hash for u in plan_units(suite, tasks, [], parity=True, training=True)))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1] and runs[0].count(",") > 10
