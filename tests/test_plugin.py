"""The pytest plugin (`harness.testing.plugin`), used here the way a user uses it, and seen from outside with
pytester: item ids, the diagnosis in pytest's output and in --junitxml, skips, the report and the gate."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from examples.my_rmsprop import make_adapter
from harness.conformance.check import ConformanceError, assert_conforms, conformance

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


# -- the project's own use: docs/adapters.md's example adapter, one item per case and dtype
def test_my_rmsprop(rmsprop_conformance) -> None:
    result = rmsprop_conformance(make_adapter)
    assert result.status == "ok" and result.adapter == "my_rmsprop"


def _torch_step(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):
    nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
    return param - lr * grad / (np.sqrt(nu) + eps), {"nu": nu}


@pytest.mark.rmsprop(cases=["own-defaults"], dtypes=["float32"])
def test_a_step_function_claiming_torch(rmsprop_conformance) -> None:
    assert rmsprop_conformance(_torch_step, preset="torch").status == "ok"


def test_assert_conforms_names_the_bug_and_the_knob() -> None:
    from examples.my_rmsprop import make_buggy_adapter

    with pytest.raises(ConformanceError) as info:
        assert_conforms(make_buggy_adapter, cases=["own-defaults"], dtypes=["float32"])
    text = str(info.value)
    assert "own-defaults / my_rmsprop_buggy [float32@cpu]" in text and "fail" in text
    assert "eps=1e-07 (the arguments say 1e-08) reproduces this run" in text
    assert "first step beyond tolerance: 1" in text


def test_a_step_function_without_preset_is_refused_in_one_line() -> None:
    from reference.errors import InputValueError

    with pytest.raises(InputValueError, match="give preset="):
        conformance(_torch_step)


def test_nothing_passing_is_not_a_pass() -> None:
    def keras_only(param, grad, state, *, learning_rate=0.001):  # every default-suite case asks for more
        return param, state

    with pytest.raises(ConformanceError, match=r"no task passed|failed"):
        assert_conforms(keras_only, preset="keras", cases=["momentum-centered"])


# -- seen from outside: a user's test file in a fresh directory
USER_TESTS = '''
import numpy as np
import pytest

def good(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):
    nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
    return param - lr * grad / (np.sqrt(nu) + eps), {"nu": nu}

def buggy(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):
    nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
    return param - lr * grad / np.sqrt(nu + eps), {"nu": nu}      # eps inside the sqrt: not torch

@pytest.mark.rmsprop(cases=["own-defaults", "momentum-centered"], dtypes=["float32", "float64"])
def test_good(rmsprop_conformance):
    rmsprop_conformance(good, preset="torch")

@pytest.mark.rmsprop(cases=["own-defaults"], dtypes=["float32"])
def test_buggy(rmsprop_conformance):
    rmsprop_conformance(buggy, preset="torch")

def test_zz_no_framework_was_imported():  # a NumPy implementation needs none, and the plugin loads none
    import sys
    assert not {"torch", "tensorflow", "jax", "keras", "optax", "paddle"} & set(sys.modules)
'''


BUGGY_ADAPTER_TEST = '''
import pytest
from my_rmsprop import make_buggy_adapter

@pytest.mark.rmsprop(cases=["own-defaults"], dtypes=["float32"])
def test_buggy_adapter(rmsprop_conformance):
    rmsprop_conformance(make_buggy_adapter)
'''


def _user_dir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)


def test_each_case_is_an_item_and_a_failure_shows_its_diagnosis(pytester: pytest.Pytester) -> None:
    _user_dir(pytester)
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rA", "-v",
                                           f"--junitxml={junit}")
    out = result.stdout.str()
    assert "test_user.py::test_good[own-defaults-float32] PASSED" in out, out
    assert "test_user.py::test_good[own-defaults-float64] PASSED" in out, out
    assert "test_user.py::test_good[momentum-centered-float32] SKIPPED" in out, out  # no momentum argument
    assert "test_user.py::test_buggy[own-defaults-float32] FAILED" in out, out
    assert "own-defaults / buggy [float32@cpu], judged against the torch reference: fail" in out, out
    assert "eps inside the sqrt" in out or "eps_placement" in out or "update rule" in out, out
    result.assert_outcomes(passed=3, skipped=2, failed=1)
    failure = next(c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") ==
               "test_buggy[own-defaults-float32]").find("failure")
    assert failure is not None and "judged against the torch reference: fail" in (failure.get("message") or "")



def test_a_failing_adapter_class_shows_its_diagnosis(pytester: pytest.Pytester) -> None:
    """The docs' example adapter with its planted bug (eps 1e-7 hard-coded), in a user's test file."""
    pytester.makepyfile(my_rmsprop=(ROOT / "examples" / "my_rmsprop.py").read_text(), test_adapter=BUGGY_ADAPTER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rA")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "test_adapter.py::test_buggy_adapter[own-defaults-float32]" in out, out
    assert "own-defaults / my_rmsprop_buggy [float32@cpu], judged against the torch reference: fail" in out, out
    assert "eps=1e-07 (the arguments say 1e-08) reproduces this run within tolerance" in out, out


def test_report_and_gate_from_a_pytest_session(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _user_dir(pytester)
    reports = tmp_path / "reports"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-k", "test_good",
                                           f"--rmsprop-report={reports}")
    result.assert_outcomes(passed=2, skipped=2)
    folder = reports / "good"
    assert (folder / "report.md").is_file() and (folder / "summary.parquet").is_file()
    assert "rmsprop-harness" in result.stdout.str() and "good: " in result.stdout.str()

    baseline = tmp_path / "baseline"
    # in a subprocess: pytester restores sys.modules after the test, and modules first imported in here (pandas'
    # and pyarrow's lazily loaded parts) would then register their extension types twice
    save = subprocess.run([sys.executable, "-m", "harness.cli", "baseline", "save", str(folder), "--to",
                           str(baseline / "good")], capture_output=True, text=True, timeout=300, check=False)
    assert save.returncode == 0, save.stderr
    ok = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-k", "test_good",
                                       f"--rmsprop-baseline={baseline}")
    assert ok.ret == 0, ok.stdout.str()
    assert "PASS" in ok.stdout.str()
    # an implementation that still passes but rounds worse (a 2-ulp nudge per float64 step): the gate fails it
    pytester.makepyfile(test_user=USER_TESTS.replace('return param - lr * grad / (np.sqrt(nu) + eps), {"nu": nu}',
                                                     'return param - lr * grad / (np.sqrt(nu) + eps) * (1 + 4e-16), '
                                                     '{"nu": nu}', 1))
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-k", "test_good",
                                        f"--rmsprop-baseline={baseline}")
    bad.assert_outcomes(passed=2, skipped=2)
    assert bad.ret == 1, bad.stdout.str()
    assert "FAIL" in bad.stdout.str() and "max_ulp" in bad.stdout.str()


def test_a_bad_marker_or_suite_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.rmsprop(suite="nosuchsuite")
def test_x(rmsprop_conformance):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "nosuchsuite" in result.stdout.str() + result.stderr.str()


def test_rmsprop_suite_option_and_a_marker_matching_no_case(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", small='name = "small"\n[defaults]\nsteps = 20\ndtypes = ["float64"]\n'
                                     '[[case]]\nname = "tiny"\n')
    pytester.makepyfile(test_s='''
import numpy as np

def step(param, grad, state, *, lr=0.01, alpha=0.99, eps=1e-8):
    nu = alpha * state.get("nu", 0.0) + (1 - alpha) * grad * grad
    return param - lr * grad / (np.sqrt(nu) + eps), {"nu": nu}

def test_small(rmsprop_conformance):
    rmsprop_conformance(step, preset="torch")
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-v",
                                           f"--rmsprop-suite={pytester.path / 'small.toml'}")
    assert "test_s.py::test_small[tiny-float64] PASSED" in result.stdout.str(), result.stdout.str()
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_s='''
import pytest

@pytest.mark.rmsprop(cases=["nosuchcase"])
def test_x(rmsprop_conformance):
    pass
''')
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    text = bad.stdout.str() + bad.stderr.str()
    # a collection error naming the marker's pattern and the suite's cases: the session stops before any test runs
    assert bad.ret == pytest.ExitCode.INTERRUPTED and "nosuchcase" in text and "own-defaults" in text, text
