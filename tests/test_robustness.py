"""The run folder and the process tree under attack (issue 14, section 4): symlinks, two writers, kill -9,
foreign schema versions, a killed driver, a shadowing harness/ in the current directory, user code named in a
suite, and resource limits and foot-guns refused up front with one line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.base import runfolder
from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
SUITE = """
name = "robust"
[defaults]
adapters = ["torch.single"]
steps = 10
records = 4
dtypes = ["float64"]
devices = ["cpu"]
shapes = { w = [3] }
"""


def _suite(tmp_path: Path, cases: int = 1, extra: str = "") -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(SUITE + "".join(f'[[case]]\nname = "c{i}"\nseed = {i}\n{extra}' for i in range(cases)))
    return path


def _run_cmd(suite: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", "--suite", str(suite), "--adapter", "tests.fake_adapter:Fake",
            "--out", str(out), "--no-progress", "--no-report"]


def _one_line(err: str, text: str) -> None:
    err = err.strip()
    assert "\n" not in err and err.startswith("rmsprop-harness: error: ") and text in err, err
    assert "Traceback" not in err


def _code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


# ------------------------------------------------------------------------------------------------ symlinks
def test_planted_symlinks_are_never_followed(tmp_path, capsys, monkeypatch) -> None:
    from harness.adapters import ADAPTERS, AdapterInfo

    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.replace('"torch.single"', '"fake"') + '[[case]]\nname = "a"\n')
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "run"
    out.mkdir()
    for name in (".summary.parquet.tmp", ".divergence.parquet.tmp", ".env.json.tmp"):  # the old fixed temp names
        (out / name).symlink_to(victim)
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-report"]) == 0
    assert victim.read_text() == "precious"
    for name in ("gate.md", "report.md"):
        (out / name).symlink_to(victim)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    _one_line(capsys.readouterr().err, "is a symlink; refusing to write an output through it")
    (out / "report.md").unlink()
    main(["baseline", "save", str(out), "--to", str(tmp_path / "bl")])
    assert main(["gate", "--baseline", str(tmp_path / "bl"), "--current", str(out)]) == 2
    _one_line(capsys.readouterr().err, "gate.md: is a symlink")
    assert victim.read_text() == "precious"
    (tmp_path / "link").symlink_to(out)
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "link"), "--no-progress"]) == 2
    _one_line(capsys.readouterr().err, "is a symlink; refusing to write an output folder through it")
    (out / "summary.parquet").unlink()
    (out / "summary.parquet").symlink_to(victim)  # a planted table is not read either
    with pytest.raises(runfolder.RunFolderError, match="is a symlink; not read"):
        runfolder.load(out)


# ------------------------------------------------------------------------------------------------ one writer


@pytest.mark.slow  # end to end, tens of seconds: run by ./dev test --all and CI
def test_a_second_run_on_the_same_folder_is_refused_and_the_first_finishes(tmp_path) -> None:
    suite = _suite(tmp_path, cases=3)
    out = tmp_path / "run"
    env = {**os.environ, "FAKE_0": "sleep", "FAKE_SLEEP": "8"}
    first = subprocess.Popen(_run_cmd(suite, out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / runfolder.MANIFEST).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(_run_cmd(suite, out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        _one_line(second.stderr, "another run is writing this folder (pid")
        assert first.wait(timeout=120) == 0, first.stderr.read()
    finally:
        first.kill()
    assert runfolder.load(out).complete


# ------------------------------------------------------------------------------------------------ kill -9
def _agree(out: Path) -> None:
    loaded = runfolder.load(out)
    s, d, u = (loaded.tables.get(t, pd.DataFrame()) for t in ("summary", "divergence", "ulp_histogram"))
    key = ["case", "adapter", "device", "dtype"]
    ran = {tuple(r) for r in s.loc[s["status"] == "ok", key].itertuples(index=False)} if len(s) else set()
    assert ran == ({tuple(r) for r in d[key].drop_duplicates().itertuples(index=False)} if len(d) else set())
    assert ran == ({tuple(r) for r in u[key].drop_duplicates().itertuples(index=False)} if len(u) else set())
    assert loaded.manifest["finished"] == len(s)
    published = {name: runfolder.sha256(runfolder.read_bytes(out / name)) for name in loaded.manifest["files"]
                 if (out / name).exists()}
    if all(published.get(n) == m["sha256"] for n, m in loaded.manifest["files"].items()):
        summary = pd.read_parquet(out / "summary.parquet")  # the top-level files are one generation too
        assert len(summary) == len(s)


@pytest.mark.slow  # end to end, tens of seconds: run by ./dev test --all and CI
def test_the_tables_agree_after_kill_9_at_any_instant(tmp_path) -> None:
    suite = _suite(tmp_path, cases=40)
    env = {**os.environ, "RMSPROP_HARNESS_PUBLISH_EVERY": "0", "FAKE_SLEEP": "0.05",  # a generation after every
           **{f"FAKE_{i}": "sleep" for i in range(40)}}  # task, tasks of ~0.05 s: kills land mid-run, often mid-write
    rng = random.Random(0)
    incomplete = 0
    for trial in range(10):
        out = tmp_path / f"run{trial}"
        proc = subprocess.Popen(_run_cmd(suite, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (out / runfolder.MANIFEST).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _agree(out)
        incomplete += not runfolder.load(out).complete
    assert incomplete >= 5  # the kills really interrupted runs


# ------------------------------------------------------------------------------------------------ versions
def test_another_schema_or_a_missing_column_is_one_line(tmp_path, capsys) -> None:
    from .runs import write_run

    out = write_run(tmp_path / "run", {"summary": pd.DataFrame([{"suite": "s", "case": "c", "status": "ok"}])}, {})
    manifest = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**manifest, "schema": 1}))
    for argv in (["report", str(out)], ["baseline", "save", str(out), "--to", str(tmp_path / "bl")]):
        assert main(argv) == 2
        _one_line(capsys.readouterr().err, "run schema 1; this harness reads schema 2")
    frame = pd.read_parquet(out / "summary.parquet").drop(columns=["status"])
    frame.to_parquet(out / "summary.parquet", index=False)
    data = (out / "summary.parquet").read_bytes()
    manifest["files"]["summary.parquet"]["sha256"] = runfolder.sha256(data)
    (out / "run.json").write_text(json.dumps(manifest))
    assert main(["report", str(out)]) == 2
    _one_line(capsys.readouterr().err, "summary.parquet: no status column")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    frame.to_parquet(legacy / "summary.parquet")
    assert main(["report", str(legacy)]) == 2
    _one_line(capsys.readouterr().err, "no run.json: written by an older harness (run schema 1)")


def test_an_interrupted_run_is_incomplete_for_report_and_gate(tmp_path, capsys) -> None:
    from .runs import write_run

    rows = pd.DataFrame([{"suite": "s", "case": f"c{i}", "adapter": "a", "device": "cpu", "dtype": "float64",
                          "status": "ok", "reason": ""} for i in range(8)])
    full = write_run(tmp_path / "full", {"summary": rows, "divergence": pd.DataFrame()}, {}, planned=8)
    half = write_run(tmp_path / "half", {"summary": rows.head(4), "divergence": pd.DataFrame()}, {},
                     complete=False, planned=8)
    assert main(["report", str(half)]) == 1
    assert "INCOMPLETE: 4 of 8 tasks finished" in capsys.readouterr().out
    assert "**INCOMPLETE (4 of 8 tasks finished" in (half / "report.md").read_text()
    assert main(["baseline", "save", str(full), "--to", str(tmp_path / "bl")]) == 0
    assert main(["gate", "--baseline", str(tmp_path / "bl"), "--current", str(half)]) == 1
    assert "## rmsprop-harness gate: INCOMPLETE" in capsys.readouterr().out
    assert main(["baseline", "save", str(half), "--to", str(tmp_path / "bl2")]) == 2
    weird = rows.assign(status=["ok"] * 7 + ["maybe"])
    odd = write_run(tmp_path / "odd", {"summary": weird, "divergence": pd.DataFrame()}, {})
    assert main(["report", str(odd)]) == 0
    assert "**FAIL: 7 ok, 1 error" in (odd / "report.md").read_text()  # an unknown status is an error, not PASS


# ------------------------------------------------------------------------------------------------ processes
def _workers_of(pid: int) -> list[int]:
    """Worker processes started by the driver ``pid`` (they carry its pid in their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RMSPROP_HARNESS_PARENT={pid}".encode() in environ:
            found.append(int(proc.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_workers_die_with_the_driver(tmp_path, sig) -> None:
    private = tmp_path / "tmp"  # this driver's temporary files only (tests run side by side)
    private.mkdir()
    suite = _suite(tmp_path, cases=2)
    out = tmp_path / "run"
    env = {**os.environ, "FAKE_0": "hang", "FAKE_1": "hang", "TMPDIR": str(private)}
    # Ctrl-C's default action in the driver: a test process may ignore SIGINT (pytest-xdist's workers do), and an
    # ignored signal stays ignored across exec
    driver = subprocess.Popen(_run_cmd(suite, out), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while not workers and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _workers_of(driver.pid)
    assert workers, "no worker started"
    time.sleep(1.0)
    driver.send_signal(sig)
    code = driver.wait(timeout=120)  # seconds here; minutes on a loaded 2-core runner
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(workers), "a worker outlived its driver"
    if sig != signal.SIGKILL:
        expected = {signal.SIGTERM: (143, "terminated"), signal.SIGINT: (130, "interrupted")}[sig]
        assert (code, expected[1] in driver.stderr.read()) == (expected[0], True)
    assert not runfolder.load(out).complete
    assert not list(private.iterdir())  # nothing left behind


def test_a_harness_package_in_the_current_directory_is_never_imported(tmp_path) -> None:
    marker = tmp_path / "imported"
    fake = tmp_path / "cwd" / "harness"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('cwd harness')\n")
    (fake / "worker.py").write_text(f"open({str(marker)!r}, 'w').write('cwd worker')\n")
    exe = Path(sys.executable).with_name("rmsprop-harness")
    proc = subprocess.run([str(exe), "run", "--suite", str(_suite(tmp_path)), "--adapter", "tests.fake_adapter:Fake",
                           "--out", str(tmp_path / "out"), "--no-progress", "--no-report"], cwd=fake.parent,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists()


def test_a_suite_never_makes_the_harness_import_user_code(tmp_path, capsys, monkeypatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass A:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "evil.toml"
    suite.write_text(SUITE.replace('"torch.single"', '"evilmod:A"') + '[[case]]\nname = "a"\n')
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    _one_line(capsys.readouterr().err, "adapter 'evilmod:A' is a Python target: suites name adapters")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ limits
def _bomb(path: Path, shape: tuple[int, ...], truncate: bool = False) -> Path:
    """A compressed .npz whose one member claims ``shape`` float64 values of zeros (a zip bomb)."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("grads/w.npy", "w", force_zip64=True) as f:
        f.write(buf.getvalue())
        n = int(np.prod(shape)) * 8 - (8 if truncate else 0)
        chunk = bytes(1 << 20)
        while n > 0:
            f.write(chunk[:min(n, len(chunk))])
            n -= len(chunk)
    return path


@pytest.mark.parametrize(("argv", "text"), [
    (["translate", "--from", "torch", "--to", "keras", "--steps", "100000000"], "100,000,000 steps (at most 100,000"),
    (["parity", "--steps", "100000000"], "100,000,000 steps (at most 100,000"),
    (["parity", "--presets", ""], "--presets '': an empty name"),
    (["translate", "--from", "torch", "--to", ""], "--to '': an empty name"),
    (["run", "--adapter", "", "--out", "OUT"], "--adapter '': an empty name"),
    (["run", "--out", ""], "--out '': give a folder"),
    (["parity", "--stream", "gaussian:scale=-1"], "scale=-1 is invalid"),
    (["parity", "--stream", "BOMB"], "parameters per step (at most 50,000,000)"),
    (["parity", "--stream", "TRUNCATED"], "is truncated"),
])
def test_limits_and_foot_guns_are_refused_up_front_in_one_line(argv, text, tmp_path, capsys) -> None:
    bomb = _bomb(tmp_path / "bomb.npz", (1, 60_000_000)) if "BOMB" in argv else None
    truncated = _bomb(tmp_path / "t.npz", (5, 4), truncate=True) if "TRUNCATED" in argv else None
    argv = [str(bomb) if a == "BOMB" else str(truncated) if a == "TRUNCATED" else str(tmp_path / "out")
            if a == "OUT" else a for a in argv]
    started = time.monotonic()
    assert _code(argv) == 2
    _one_line(capsys.readouterr().err, text)
    assert time.monotonic() - started < 30


def test_a_zip_bomb_recording_never_reaches_the_driver_s_memory(tmp_path) -> None:
    """A 0.5 MB file that inflates to 480 MB (or claims 8 TB): refused from its header, in bounded memory."""
    bomb = _bomb(tmp_path / "bomb.npz", (1, 60_000_000))
    assert bomb.stat().st_size < 1_000_000
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "parity", "--stream", str(bomb)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0  # VmHWM of the command itself (rusage would count the forking test process's pages)
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        peak = max(peak, next((int(line.split()[1]) * 1024 for line in status.splitlines()
                               if line.startswith("VmHWM:")), 0))
        time.sleep(0.01)
    assert proc.wait() == 2
    assert 0 < peak < 300e6, peak  # the harness itself, not the inflated data
    assert b"60,000,000 parameters per step" in proc.stderr.read()


def test_the_current_directory_and_a_baseline_are_never_run_folders(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep me")
    assert _code(["run", "--out", "", "--no-progress"]) == 2
    assert _code(["run", "--out", ".", "--no-progress"]) == 2
    _one_line(capsys.readouterr().err.splitlines()[-1], "holds other files (mine.txt) and is not a run folder")
    baseline = ROOT / "reports" / "baseline"
    before = {p.name: p.read_bytes() for p in baseline.iterdir()}
    assert _code(["run", "--out", str(baseline), "--no-progress"]) == 2
    _one_line(capsys.readouterr().err, "is a baseline (baseline.json); refusing to write a run into it")
    assert {p.name: p.read_bytes() for p in baseline.iterdir()} == before
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(("body", "text"), [
    ('[[case]]\nname = "a"\nargs.torch = { lr = "0.01" }\n', "torch: lr must be a number, got '0.01'"),
    ('[[case]]\nname = "a"\ntimeout = inf\n', "timeout: expected a number of seconds in (0, 86400]"),
    ('[[case]]\nname = "a"\nshapes = { w = [] }\n', "shapes.w: expected a non-empty list of dimensions"),
    ('[[case]]\nname = "a"\nshapes = { w = [100000, 100000] }\n', "10,000,000,000 parameters (at most 50,000,000"),
    ('[[case]]\nname = "a"\nrecords = 1000000000\n', "records: expected an integer in [2, 10000]"),
    ('[[case]]\nname = "a"\nschedule = { kind = "piecewise", boundaries = [50, 10], values = [1e-3, 1e-4, 1e-5] }\n',
     "schedule.boundaries: expected strictly increasing step numbers"),
    ('[[parity]]\nsteps = 100000000\n[[case]]\nname = "a"\n', "100,000,000 steps (at most 100,000"),
    ('[[parity]]\nscales = [0]\n[[case]]\nname = "a"\n', "scales=(0,): finite numbers > 0"),
])
def test_suite_values_are_validated_not_coerced(body, text, tmp_path, capsys) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SUITE.replace("shapes = { w = [3] }\n", "") + body)
    assert _code(["run", "--suite", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    _one_line(capsys.readouterr().err, text)


def test_a_harness_bug_keeps_its_traceback(monkeypatch) -> None:
    import harness.compare.explain

    def broken(*args, **kwargs):
        raise TypeError("a bug, not bad input")

    monkeypatch.setattr(harness.compare.explain, "explain", broken)
    with pytest.raises(TypeError, match="a bug, not bad input"):
        main(["explain"])
    monkeypatch.setattr(harness.compare.explain, "explain", lambda *a, **k: {}["missing"])
    with pytest.raises(KeyError):
        main(["explain"])
