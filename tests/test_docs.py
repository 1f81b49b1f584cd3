"""Every command shown in the README (through ``./dev harness``, as shown) and every ``rmsprop-harness`` command in
docs/ runs.

Commands are taken from the fenced ``bash``/``console``/``sh`` blocks (a ``console`` block's
commands are its ``$ `` lines) and run in document order, in-process, in a scratch folder that holds
a copy of ``examples/`` and a small complete run in ``reports/latest`` (the stand-in adapter, so
the gate, baseline and report commands have something real to read). ``run``, ``bench`` and ``identify`` run as
``--dry-run``: everything is loaded and checked (suites, adapters, including a user adapter
described in its subprocess, options) and the plan printed, but nothing is measured: the default
suite and the perf suites take minutes, and their real runs are tested elsewhere. A command passes
when it exits 0 or 1 (some examples fail on purpose: an impossible translation, a buggy adapter)
and raises nothing; exit 2 means the docs show bad input.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from harness.adapters import ADAPTERS, AdapterInfo
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SMALL_SUITE = """
name = "docs"
[defaults]
adapters = ["fake"]
steps = 20
dtypes = ["float64"]
[[case]]
name = "own-defaults"
"""


def commands(path: Path) -> list[str]:
    """The rmsprop-harness command lines of a Markdown file's shell and console blocks, in order."""
    out = []
    for lang, body in FENCE.findall(path.read_text()):
        if lang not in ("bash", "console", "sh", "shell"):
            continue
        body = body.replace("\\\n", " ")  # continuation lines
        for line in body.splitlines():
            line = line.strip()
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if line.startswith("rmsprop-harness "):
                out.append(line)
    return out


ALL = [(p, c) for p in DOCS[1:] for c in commands(p)]
HEAVY = ("run", "bench", "identify", "train", "timeline")  # they run frameworks: tested for real elsewhere, dry here
QUICKSTART = ("./dev report", "./dev test", "./dev install")  # the two quickstart commands are CI itself


def readme_commands() -> list[str]:
    """The README's shell lines in document order (a ``console`` block's ``$`` lines), but the quickstart's."""
    out = []
    for lang, body in FENCE.findall((ROOT / "README.md").read_text()):
        if lang not in ("bash", "console", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if line and not line.startswith(QUICKSTART):
                out.append(line)
    return out


def test_the_docs_show_commands_and_the_reader_finds_them() -> None:
    names = {p.name for p, _ in ALL}
    assert {"run.md", "parity.md", "translate.md", "bench.md", "gate.md", "vectors.md", "testing.md"} <= names
    readme = readme_commands()
    assert readme and all(c.startswith(("./dev harness ", "cc ")) for c in readme), readme
    text = "```console\n$ rmsprop-harness a \\\n    --b\noutput\n```\n```python\nrmsprop-harness no\n```\n"
    probe = ROOT / "tests" / "_probe.md"
    try:
        probe.write_text(text)
        assert commands(probe) == ["rmsprop-harness a      --b"]
    finally:
        probe.unlink()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder holding examples/ and a small complete run in reports/latest (the stand-in adapter)."""
    from harness.conformance.runner import run_suite

    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / "docs.toml").write_text(SMALL_SUITE)
    mp = pytest.MonkeyPatch()
    mp.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    try:
        result = run_suite(work / "docs.toml", out=work / "reports" / "latest")
        assert result.exit_code == 0
    finally:
        mp.undo()
    return work


@pytest.mark.parametrize(("path", "command"), ALL, ids=[f"{p.name}:{c[16:60]}" for p, c in ALL])
def test_every_documented_command_runs(path, command, scratch, monkeypatch, capsys) -> None:
    monkeypatch.chdir(scratch)
    import harness.adapters as registry

    # a user adapter a command names is registered in this process: undone after each command
    monkeypatch.setattr(ADAPTERS, "_user", dict(ADAPTERS._user))
    monkeypatch.setattr(registry, "_USER_TARGETS", dict(registry._USER_TARGETS))
    monkeypatch.setitem(ADAPTERS, "fake", AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake"))
    argv = shlex.split(command, comments=True)[1:]
    if argv[0] in HEAVY:
        argv.append("--dry-run")
    code = main(argv)
    out = capsys.readouterr()
    assert code in (0, 1), f"{path.name}: `{command}` exited {code}: {out.err.strip()[-500:]}"


@pytest.mark.slow
def test_every_readme_command_runs_through_dev_harness(scratch, tmp_path) -> None:
    """The README's commands, in order, in one folder, each as a user types it: ``./dev harness ...`` (the script,
    in a subprocess: the entry point the README shows) and the C example's compile-and-run line."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    work = tmp_path / "readme"  # its own copy: the docs' commands write into the shared scratch folder meanwhile
    shutil.copytree(scratch, work, symlinks=True)
    for command in readme_commands():
        if command.startswith("cc ") and shutil.which("cc") is None:
            pytest.skip("no C compiler: the rest of the README's commands need its results")
        if command.startswith("./dev harness "):
            argv = shlex.split(command, comments=True)[2:]
            line = shlex.join([str(ROOT / "dev"), "harness", *argv, *(["--dry-run"] if argv[0] in HEAVY else [])])
        else:
            line = command.replace("./dev ", f"{ROOT / 'dev'} ")
        proc = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode in (0, 1), f"README: `{command}` exited {proc.returncode}: {proc.stderr[-800:]}"
        assert "Traceback" not in proc.stderr, f"README: `{command}`: {proc.stderr[-2000:]}"


def test_every_file_and_module_the_docs_name_exists() -> None:
    import importlib

    text = "\n".join(p.read_text() for p in DOCS)
    # paths of this repository (not ../shared/docs/...)
    files = set(re.findall(r"(?<![\w/.])(?:harness|reference|examples|suites|tests|docs)/[\w/.-]*\.(?:py|toml|yml|md)",
                           text))
    missing = sorted(f for f in files if not (ROOT / f).is_file())
    assert files and not missing, missing
    bad = []
    for name in sorted(set(re.findall(r"`((?:harness|reference)(?:\.\w+)+)`", text))):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            module, _, attr = name.rpartition(".")
            if not hasattr(importlib.import_module(module), attr):
                bad.append(name)
    assert not bad, bad
