"""Suites: the built-in ones load, and every kind of mistake is one line naming file, key and problem."""

from __future__ import annotations

import numpy as np
import pytest

from harness.base.streams import record
from harness.conformance.suite import SuiteError, builtin_suites, load_suite


def test_builtin_suites_load_and_cover_the_issue() -> None:
    assert {"default", "seed", "edge"} <= set(builtin_suites())
    default = load_suite("default")
    names = {c.name for c in default.cases}
    assert {"own-defaults", "matched-eps-inside", "matched-eps-outside"} <= names
    assert {c.stream.kind for c in default.cases} >= {"gaussian", "lognormal", "mixed_scale", "sparse"}
    assert all(set(c.dtypes) == {"float32", "float64"} for c in default.cases)
    assert any(c.schedule is not None for c in default.cases)
    seed = load_suite("seed")
    assert all(c.stream.kind == "recorded" and c.steps == 100 for c in seed.cases)
    assert seed.cases[0].shapes == {"weight": (2, 3), "bias": (2,)}
    assert seed.cases[0].reference_spec("torch.single").decay == 0.99
    edge = load_suite("edge")
    assert {c.stream.kind for c in edge.cases} == {"tiny", "huge", "zeros", "nonfinite"}
    assert len(default.digest) == 64


def test_a_case_resolves_native_arguments_by_adapter_then_family() -> None:
    case = load_suite("default").cases[1]  # momentum-centered
    assert case.native("torch.foreach") == {"lr": 1e-3, "alpha": 0.9, "momentum": 0.9, "centered": True}
    assert case.native("keras.tensorflow")["centered"] is True
    own = load_suite("default").cases[0]
    assert own.native("torch.single") == {} and own.native("optax") == {"learning_rate": 1e-3}


def _write(tmp_path, body: str):
    path = tmp_path / "s.toml"
    path.write_text(body)
    return path


GOOD = """
[defaults]
adapters = ["torch.single"]
[[case]]
name = "a"
"""


@pytest.mark.parametrize(("body", "message"), [
    (GOOD + "strem = {kind = 'gaussian'}\n", "case[0].strem: unknown key; did you mean 'stream'?"),
    (GOOD + "steps = 'ten'\n", "case 'a' steps: expected an integer in [1, 1e+08], got 'ten'"),
    (GOOD + "steps = 0\n", "case 'a' steps: expected an integer in [1, 1e+08], got 0"),
    (GOOD + "dtypes = ['float128']\n", "case 'a' dtypes: expected a non-empty list from float16"),
    (GOOD + "devices = ['tpu']\n", "case 'a' devices: expected \"auto\" or a list"),
    (GOOD + "adapters = ['pytorch']\n", "case 'a' adapters: unknown adapter 'pytorch'"),
    (GOOD + "stream = {kind = 'gausian'}\n", "case 'a' stream.kind: unknown kind 'gausian'; did you mean 'gaussian'?"),
    (GOOD + "stream = {kind = 'sparse', zero_fraction = 2}\n", "case 'a' stream: zero_fraction=2 is invalid"),
    (GOOD + "stream = {kind = 'gaussian', sigma = 2}\n", "case 'a' stream.sigma: unknown option for kind 'gaussian'"),
    (GOOD + "args.torch = {lr = -1}\n", "case 'a' args.torch: torch: lr=-1.0 is invalid"),
    (GOOD + "args.torch = {learning_rate = 0.1}\n", "case 'a' args.torch: torch: got an unexpected keyword argument"),
    (GOOD + "args.keras = {}\n", "case 'a' args.keras: not an adapter or family of this case"),
    (GOOD + "spec = {eps_placment = 'inside'}\n", "case 'a' spec.eps_placment: unknown key; did you mean"),
    (GOOD + "spec = {decay = 2.0}\n", "case 'a' spec: RMSpropSpec.decay=2.0 is invalid"),
    (GOOD + "spec = {}\nargs.torch = {}\n", "give either args (framework-native) or spec"),
    (GOOD + "schedule = {kind = 'cosine'}\n", "case 'a' schedule.kind: expected one of values, exponential"),
    (GOOD + "schedule = {kind = 'values', values = [0.1]}\n", "case 'a' schedule.values: 1 values for 100 steps"),
    (GOOD + "schedule = {kind = 'exponential', initial = 0.1}\n", "case 'a' schedule.rate: missing"),
    (GOOD + "shapes = {w = [0, 3]}\n", "case 'a' shapes.w: expected a non-empty list of dimensions >= 1"),
    (GOOD + "[[case]]\nname = 'a'\n", "case[1].name: duplicate case name 'a'"),
    ("[[case]]\nname = 'has space'\n", "case[0].name: expected a name of letters"),
    ("nmae = 'x'\n" + GOOD, "nmae: unknown key; did you mean 'name'?"),
    ("[defaults]\nsteps = 3\n", "case: expected one or more [[case]] tables"),
    ("this is = not toml [", "not valid TOML"),
    (GOOD + "stream = {kind = 'recorded', path = 'absent.npz'}\n", "case 'a' stream.path: "),
])
def test_mistakes_are_one_line_naming_file_key_and_problem(tmp_path, body, message) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert message in text, text


def test_unknown_suite_names_the_builtins() -> None:
    with pytest.raises(SuiteError, match=r"no such suite file or built-in suite .*default"):
        load_suite("defualt")


def test_recorded_stream_takes_shapes_and_steps_from_the_file(tmp_path) -> None:
    record(tmp_path / "g.npz", {"w": np.zeros((7, 4))})
    suite = load_suite(_write(tmp_path, GOOD + "stream = {kind = 'recorded', path = 'g.npz'}\n"))
    assert suite.cases[0].shapes == {"w": (4,)} and suite.cases[0].steps == 7
    with pytest.raises(SuiteError, match="8 steps asked, the recording has 7"):
        load_suite(_write(tmp_path, GOOD + "steps = 8\nstream = {kind = 'recorded', path = 'g.npz'}\n"))


def test_schedules() -> None:
    from harness.conformance.cases import Schedule

    exponential = Schedule(kind="exponential", options={"initial": 1.0, "rate": 0.5})
    np.testing.assert_allclose(exponential.lrs(3), [1, 0.5, 0.25])
    np.testing.assert_array_equal(Schedule(kind="piecewise", options={"boundaries": [2], "values": [1.0, 0.1]}).lrs(4),
                                  [1.0, 1.0, 0.1, 0.1])
    cos = Schedule(kind="warmup_cosine", options={"peak": 1.0, "warmup": 4, "final": 0.0}).lrs(14)
    np.testing.assert_allclose(cos[:4], [0.25, 0.5, 0.75, 1.0])
    assert cos[-1] == pytest.approx(0.0) and np.all(np.diff(cos[3:]) <= 0)


def test_default_suite_runs_every_adapter_and_keras_options() -> None:
    from harness.adapters import BUILTIN

    default = load_suite("default")
    assert set().union(*(c.adapters for c in default.cases)) == set(BUILTIN)
    keras_args = [c.native("keras.torch") for c in default.cases if "keras.torch" in c.adapters and c.args]
    for option in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
        assert any(option in a for a in keras_args), option
    assert load_suite("default").cases[0].native("tf.raw") == {"lr": 1e-3, "rho": 0.9, "momentum": 0.0,
                                                              "epsilon": 1e-7}


def test_full_suite_is_the_knob_matrix() -> None:
    from reference.translate import Unsupported

    full = load_suite("full")
    assert len(full.cases) == 32
    case = next(c for c in full.cases
                if c.name == "knobs/centered=true/momentum=0.9/weight_decay=0.01/schedule=warmup_cosine/"
                             "stream=mixed_scale")
    assert case.native("torch.single") == {"lr": 1e-3, "centered": True, "momentum": 0.9, "weight_decay": 0.01}
    assert case.native("keras.jax")["weight_decay"] == 0.01 and case.schedule.kind == "warmup_cosine"
    assert case.stream.kind == "mixed_scale"
    with pytest.raises(Unsupported, match=r"^unsupported: weight_decay=0.01 \(tf1 has weight_decay=none\)"):
        case.native("tf1.function")
    plain = full.cases[0]
    assert plain.native("optax") == {"learning_rate": 1e-3, "centered": False, "momentum": None}
    assert plain.native("keras.tensorflow")["weight_decay"] is None and plain.schedule is None


def test_matrix_knobs_use_each_frameworks_argument_names(tmp_path) -> None:
    path = _write(tmp_path, """
        [defaults]
        adapters = ["torch.single", "keras.tensorflow", "tf1", "optax"]
        [[case]]
        name = "m"
        [case.matrix]
        decay = [0.95]
        eps = [1e-6]
        lr = [0.5]
        [[case]]
        name = "s"
        spec = { eps_placement = "outside" }
        [case.matrix]
        momentum = [0.0, 0.5]
        weight_decay = [0.1]
    """)
    m, s0, s5 = load_suite(path).cases
    assert m.native("torch.single") == {"alpha": 0.95, "eps": 1e-6, "lr": 0.5}
    assert m.native("keras.tensorflow") == {"rho": 0.95, "epsilon": 1e-6, "learning_rate": 0.5}
    assert m.native("tf1") == {"learning_rate": 0.5, "decay": 0.95, "epsilon": 1e-6}
    assert (s0.name, s5.name) == ("s/momentum=0/weight_decay=0.1", "s/momentum=0.5/weight_decay=0.1")
    assert (s5.spec.momentum, s5.spec.weight_decay_mode, s5.spec.eps_placement) == (0.5, "coupled", "outside")


@pytest.mark.parametrize(("body", "message"), [
    ("[case.matrix]\nmomentm = [0.9]", "case[0].matrix.momentm: unknown key; did you mean 'momentum'?"),
    ("[case.matrix]\nmomentum = []", "case[0].matrix.momentum: expected a non-empty list"),
    ("[case.matrix]\nmomentum = 0.9", "case[0].matrix.momentum: expected a non-empty list"),
    ("matrix = 3", "case[0].matrix: expected a table"),
    ("[case.matrix]\ncentered = [true, 3]", "case 'c/centered=3' args.torch: torch: centered must be True or False"),
])
def test_bad_matrix_is_one_line(tmp_path, body: str, message: str) -> None:
    path = _write(tmp_path, f'[defaults]\nadapters = ["torch.single"]\n[[case]]\nname = "c"\n{body}\n')
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value) == f"{path}: {message}" or message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_all_adapters_grow_with_the_records_and_follow_native_arguments(tmp_path) -> None:
    from harness.adapters import BUILTIN

    path = _write(tmp_path, "[defaults]\nadapters = ['all']\n"
                            "[[case]]\nname = 'own'\n"
                            "[[case]]\nname = 'matched'\nspec = { lr = 1e-3, eps_placement = 'outside' }\n"
                            "[[case]]\nname = 'native'\nargs.torch = { lr = 1e-3 }\n"
                            "args.optax = { learning_rate = 0.1 }\n"
                            "[[case]]\nname = 'named'\nadapters = ['all', 'keras']\nargs.torch = { lr = 1e-3 }\n")
    own, matched, native, named = load_suite(path).cases
    assert set(own.adapters) == set(matched.adapters) == set(BUILTIN)  # no arguments, or semantics: every one
    assert set(native.adapters) == {"torch.single", "torch.foreach", "torch.capturable", "optax"}
    assert {"keras.jax", "torch.single"} <= set(named.adapters) and "optax" not in named.adapters
    with pytest.raises(SuiteError, match="no adapter of this case takes these arguments"):
        load_suite(_write(tmp_path, "[[case]]\nname = 'a'\nadapters = ['all']\nargs.nobody = { lr = 1 }\n"))
