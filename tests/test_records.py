"""One record per implementation (`reference.implementations`): every record is complete, every
consumer reads it, and a new implementation is its record plus its adapter (plus a suite line).

What a record must provide, and who reads it:

============  ==================================================================================
name          presets.PRESETS, translate (source and target), explain, CLI help (parity,
              translate, explain), parity's default presets, the adapter registry
preset        presets.get; every reference the harness computes for it
title, call   how `rmsprop-harness translate` prints a call of it
native        semantics -> its own arguments (translate, a suite's ``spec`` cases)
knobs         neutral knob -> its argument (parity settings, suite matrices, bench settings)
required      arguments without a default (presets.REQUIRED_DEFAULTS, own-defaults cases)
parity        membership in `rmsprop-harness parity`'s default presets
packages      the versions every env.json reports
adapters      the adapter classes that drive the real implementation (harness.adapters.ADAPTERS)
rewrites      what it can silently rewrite (`rmsprop-harness explain` lists them under its table)
============  ==================================================================================
"""

from __future__ import annotations

import inspect
import json

import pytest

from harness.adapters import ADAPTERS, BUILTIN
from harness.base import environment
from harness.cli import main
from harness.compare import parity as parity_module
from harness.compare.explain import explain
from harness.compare.translate import translate
from harness.conformance.cases import Suite
from harness.conformance.plan import plan
from harness.conformance.suite import load_suite
from reference import RMSpropSpec, implementations, presets
from reference.implementations import KNOBS
from reference.translate import knob_args, native_args

from .toy_implementation import RECORD as TOY

RECORDS = implementations.all_records()


def _parameters(record: implementations.Implementation) -> set[str] | None:
    """The preset's argument names; None when it takes any keyword (`spec`: the knobs themselves)."""
    params = inspect.signature(record.preset).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def _takes(record: implementations.Implementation, args) -> bool:
    accepted = _parameters(record)
    return accepted is None or set(args) <= accepted


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_every_record_is_complete(record) -> None:
    assert record.name.isidentifier() and record.title and record.call
    assert "{}" in record.call or record.call_text is not None  # translate can print a call
    spec = record.defaults()
    assert isinstance(spec, RMSpropSpec)
    assert _takes(record, record.required), "required arguments the preset does not take"
    mapped = {*record.knobs, *record.knob_values}
    assert mapped <= set(KNOBS)
    for knob in mapped:  # every mapped knob names arguments the preset takes
        assert _takes(record, record.knob_args(knob, 0.5 if knob != "centered" else True)), knob
    args = native_args(record.name, spec)  # its own defaults round-trip through its own arguments
    assert _takes(record, args) and presets.get(record.name)(**args).effective_knobs() == \
        spec.effective_knobs()
    if record.name != "spec":  # `spec` is the knobs themselves, for users' own kernels
        assert record.reference_only or (record.packages and record.adapters), \
            "a framework reports its versions and has an adapter, or says why it cannot"
    for target in record.adapters:  # each adapter declares the record's preset (checked when it loads)
        assert any(i.target == target and i.preset == record.name for i in ADAPTERS.values()), target


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_every_record_is_consumed(record, capsys) -> None:
    name = record.name
    assert presets.PRESETS[name] is record.preset and dict(presets.REQUIRED_DEFAULTS[name]) == dict(record.required)
    assert (name in parity_module.PARITY_PRESETS) == record.parity
    packages = environment.environment()["packages"]
    assert set(record.packages) <= set(packages)  # a version (or None: not installed) is always reported
    for knob in {*record.knobs, *record.knob_values}:
        assert knob_args(name, knob, 0.5 if knob != "centered" else True) == \
            record.knob_args(knob, 0.5 if knob != "centered" else True)
    for command in ("translate", "explain", "parity"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        if command != "parity" or record.parity:
            assert name in help_text, f"{command} --help does not list {name}"
    shown = explain([name], fmt="json")
    assert json.loads(shown)["rewrites"].get(name, []) == list(record.rewrites)
    for rewrite in record.rewrites:
        assert rewrite in explain([name])
    if name != "spec":
        source, args = ("keras", {"learning_rate": 0.01}) if name == "torch" else ("torch", {"lr": 0.01})
        t = translate(source, args, name)
        assert t.call.startswith(record.call.split("(")[0]), t.call  # printed from the record


def test_the_records_cover_every_built_in_adapter() -> None:
    listed = {t for r in RECORDS for t in r.adapters}
    assert {ADAPTERS[a].target for a in BUILTIN} == listed


@pytest.fixture
def toy():
    implementations.register(TOY)
    try:
        yield TOY
    finally:
        implementations.unregister(TOY.name)


def test_a_new_implementation_is_one_record_and_one_adapter(toy, tmp_path, capsys) -> None:
    """Registering the toy's record (what adding ``reference/implementations/toy.py`` does) makes
    every consumer see it; its adapter then runs a suite case and passes against its preset."""
    assert presets.get("toy") is toy.preset and "toy" in presets.PRESETS and "toy" in parity_module.PARITY_PRESETS
    assert "toy" in BUILTIN and ADAPTERS["toy"].preset == "toy" and ADAPTERS["toy"].devices == ("cpu",)
    assert knob_args("toy", "decay", 0.9) == {"beta": 0.9}
    t = translate("optax", {"learning_rate": 0.01, "decay": 0.9, "eps": 1e-7}, "toy")
    assert t.status == "exact" and t.call == "toy.RMSprop(params, step_size=0.01, beta=0.9, epsilon=1e-07)"
    with pytest.raises(SystemExit):
        main(["translate", "--help"])
    assert "toy" in capsys.readouterr().out
    suite_file = tmp_path / "toy.toml"  # the suite line
    suite_file.write_text('name = "toy"\n[defaults]\nadapters = ["toy"]\nsteps = 50\n'
                          '[[case]]\nname = "matched"\nspec = { lr = 1e-3, decay = 0.9, eps = 1e-7, '
                          'eps_placement = "inside" }\n[[case]]\nname = "own"\n'
                          '[[case]]\nname = "torch-semantics"\nspec = { eps_placement = "outside" }\n')
    suite: Suite = load_suite(suite_file)
    planned = {p.case.name: p for p in plan(suite)}
    assert planned["matched"].task.kwargs == {"step_size": 1e-3, "beta": 0.9, "epsilon": 1e-7}
    assert planned["torch-semantics"].task is None and "eps_placement" in planned["torch-semantics"].reason
    from harness.conformance.runner import run_suite

    result = run_suite(suite, out=None)
    statuses = result.summary.set_index(["case", "dtype"])["status"]
    assert (statuses.loc[["matched", "own"]] == "ok").all(), result.summary[["case", "dtype", "reason"]]
    assert (statuses.loc["torch-semantics"] == "unsupported").all()
    implementations.unregister("toy")
    assert "toy" not in ADAPTERS and "toy" not in presets.PRESETS and "toy" not in parity_module.PARITY_PRESETS


def test_a_record_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        implementations.register(implementations.get("torch"))
