"""The front door, tried as a new user would: help with examples, suggestions for typos, cases listed, JSON
numbers, which adapters ran, ./dev harness from any folder."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from harness.cli import COMMANDS, EXAMPLES, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_has_examples_in_its_help_and_they_parse(capsys) -> None:
    parser = build_parser()
    names = {c.__name__.rsplit(".", 1)[-1] for c in COMMANDS}
    assert names == set(EXAMPLES)
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "example" in capsys.readouterr().out, name
        for line in EXAMPLES[name]:
            args = parser.parse_args(shlex.split(line)[1:])
            assert args.command == name, line


def test_a_mistyped_preset_argument_gets_a_suggestion(capsys) -> None:
    assert main(["translate", "--from", "torch", "alpah=0.9", "--to", "keras"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'alpha'?" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_case_lists_the_suites_cases(capsys) -> None:
    assert main(["run", "--case", "nosuchcase", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no case of suite 'default' matches --case nosuchcase" in err and "own-defaults" in err


def test_explain_json_has_json_numbers_booleans_and_null(capsys) -> None:
    assert main(["explain", "torch", "keras", "--format", "json"]) == 0
    knobs = json.loads(capsys.readouterr().out)["knobs"]
    assert knobs["lr"] == {"torch": 0.01, "keras": 0.001}
    assert knobs["eps"]["keras"] == 1e-7 and knobs["centered"]["torch"] is False
    assert any(v is None for row in knobs.values() for v in row.values())  # a knob without effect: null


def test_a_run_says_which_adapters_ran(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[defaults]\nsteps = 5\ndtypes = ["float64"]\n[[case]]\nname = "c"\n')
    code = main(["run", "--suite", str(suite), "--adapter", "examples.my_rmsprop:make_adapter", "--out",
                 str(tmp_path / "out"), "--no-report", "--no-progress"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "adapters (" in out and "my_rmsprop" in out, out


def test_dev_harness_runs_where_it_is_called(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "dev"), "harness", "explain", "torch", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["knobs"]["lr"] == {"torch": 0.01}
    bad = subprocess.run([str(ROOT / "dev"), "harness", "vectors", "export", "--preset", "torch", "--case",
                          "own-defaults", "--out", "here"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, check=False)
    assert bad.returncode == 0 and (tmp_path / "here" / "index.json").is_file(), bad.stderr  # relative to the caller
