"""The pytest plugin (entry point ``pytest11``: ``rmsprop``): an RMSprop under test, one test item per case.

::

    from mypackage.kernels import make_adapter        # an Adapter factory, class or instance, or a step function

    def test_my_rmsprop(rmsprop_conformance):
        rmsprop_conformance(make_adapter)            # items test_my_rmsprop[own-defaults-float32], ...

    @pytest.mark.rmsprop(suite="edge", cases=["own-*"], dtypes=["float32"])
    def test_my_step(rmsprop_conformance):
        rmsprop_conformance(my_step, preset="torch")

A test that uses the ``rmsprop_conformance`` fixture is parametrized by the suite's cases and dtypes
(``--rmsprop-suite``, or the ``rmsprop`` marker's ``suite``, ``cases``, ``dtypes`` and ``devices``). The
first item to call the fixture runs the whole selection in this process
(`harness.conformance.check`); each item then passes, fails with the diagnosis (what failed first, by
how much, the knob that reproduces it) or is skipped with the reason (a case the implementation
cannot express). ``--rmsprop-report DIR`` writes each implementation's run folder and report to
``DIR/<adapter>``; ``--rmsprop-baseline DIR`` gates each against ``DIR/<adapter>`` (a folder written by
``rmsprop-harness baseline save``) when the session ends and fails the session on a regression.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MARKER = "rmsprop"
_STATE = pytest.StashKey["_Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rmsprop", "rmsprop-harness conformance (rmsprop_conformance fixture)")
    group.addoption("--rmsprop-suite", default=None, metavar="NAME|PATH",
                    help="the suite whose cases parametrize rmsprop_conformance tests (default: default; a test's "
                         "rmsprop marker wins)")
    group.addoption("--rmsprop-report", default=None, metavar="DIR",
                    help="write each implementation's run folder and report (report.md, report.html) to DIR/<adapter>")
    group.addoption("--rmsprop-baseline", default=None, metavar="DIR",
                    help="gate each implementation's run against DIR/<adapter> when the session ends; a regression "
                         "fails the session")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(suite=None, cases=None, dtypes=None, devices=None): the selection "
                                       "that parametrizes a test's rmsprop_conformance fixture")
    if config.getoption("--rmsprop-baseline", None) and config.getoption("numprocesses", None):
        raise pytest.UsageError("--rmsprop-baseline gates one process's run: add -n 0 (pytest-xdist splits the "
                                "items over processes)")
    config.stash[_STATE] = _Session(config)


@dataclass(frozen=True)
class Selection:
    """What one test's items cover (hashable: the run's cache key with the implementation)."""

    suite: str
    cases: tuple[str, ...] | None
    dtypes: tuple[str, ...] | None
    devices: tuple[str, ...] | None


@dataclass(frozen=True)
class Item:
    case: str
    dtype: str
    device: str
    selection: Selection


def _selection(config: pytest.Config, marker: pytest.Mark | None) -> Selection:
    kw = dict(marker.kwargs) if marker is not None else {}
    unknown = sorted(set(kw) - {"suite", "cases", "dtypes", "devices"})
    if unknown or (marker is not None and marker.args):
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: takes keyword arguments suite, cases, dtypes, devices "
                                f"(got {', '.join(unknown) or 'positional arguments'})")

    def names(key: str) -> tuple[str, ...] | None:
        value = kw.get(key)
        return None if value is None else ((value,) if isinstance(value, str) else tuple(value))

    suite = kw.get("suite") or config.getoption("--rmsprop-suite") or "default"
    return Selection(str(suite), names("cases"), names("dtypes"), names("devices"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rmsprop_conformance" not in metafunc.fixturenames:
        return
    import fnmatch

    from harness.base import options
    from harness.conformance.check import test_id
    from harness.conformance.suite import load_suite
    from reference.errors import InputError

    selection = _selection(metafunc.config, metafunc.definition.get_closest_marker(MARKER))
    try:  # the suite and the options only: the implementation is planned when the first item calls the fixture
        options.devices(list(selection.devices or []) or None)
        options.dtypes(list(selection.dtypes or []) or None)
        suite = load_suite(selection.suite)
    except InputError as exc:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: {exc}") from None
    items = []
    for case in suite.cases:
        if selection.cases and not any(fnmatch.fnmatchcase(case.name, p) for p in selection.cases):
            continue
        devices = selection.devices or (("cpu",) if case.devices == "auto" else tuple(case.devices))
        for device in devices:
            for dtype in selection.dtypes or case.dtypes:
                items.append(Item(case.name, dtype, device, selection))
    if selection.cases and not items:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no case of suite {suite.name!r} matches "
                                f"{', '.join(selection.cases)}; its cases: {', '.join(c.name for c in suite.cases)}")
    metafunc.parametrize("rmsprop_conformance", items, ids=[test_id(i.case, i.dtype, i.device) for i in items],
                         indirect=True)


class Conformance:
    """What the fixture gives a test: call it with the implementation (and ``preset=`` for a step function)."""

    def __init__(self, session: _Session, item: Item | None):
        self.session, self.item = session, item

    def __call__(self, implementation: Any, *, preset: str | None = None, name: str | None = None):
        if self.item is None:
            raise pytest.UsageError("rmsprop_conformance is parametrized by the plugin; request it from a test "
                                    "function, not from another fixture")
        results = self.session.results(implementation, preset, name, self.item.selection)
        mine = [r for r in results if (r.case, r.dtype, r.device) == (self.item.case, self.item.dtype,
                                                                        self.item.device)]
        if not mine:
            adapter = results[0].adapter if results else "the implementation"
            pytest.skip(f"{adapter} takes no part in case {self.item.case!r} (its family has no arguments there)")
        result = mine[0]
        if result.status in ("unsupported", "skipped"):
            reason = str(result.reason)
            pytest.skip(reason if reason.startswith(result.status) else f"{result.status}: {reason}")
        if not result.passed:
            pytest.fail(result.diagnosis(), pytrace=False)
        return result


@pytest.fixture
def rmsprop_conformance(request: pytest.FixtureRequest) -> Conformance:
    """Judge an RMSprop (adapter, adapter class or factory, or step function) on this item's case and dtype."""
    return Conformance(request.config.stash[_STATE], getattr(request, "param", None))


class _Session:
    """Runs per implementation and selection, each once per pytest process; the folders to report and gate."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.cache: dict[tuple, list] = {}
        self.folders: dict[str, Path] = {}
        self.lines: list[str] = []
        worker = getattr(config, "workerinput", {}).get("workerid")  # a pytest-xdist worker (not an inherited env)
        report = config.getoption("--rmsprop-report", None)
        self.baseline = config.getoption("--rmsprop-baseline", None)
        if report is None and self.baseline is not None:
            report = tempfile.mkdtemp(prefix="rmsprop-gate-")
        self.report = None if report is None else Path(report)
        self.suffix = f"-{worker}" if worker else ""  # pytest-xdist: one folder per worker process

    def results(self, implementation: Any, preset: str | None, name: str | None, selection: Selection) -> list:
        from harness.conformance.check import as_adapter, conformance

        key = (id(implementation), preset, name, selection)
        if key not in self.cache:
            adapter = as_adapter(implementation, preset, name)
            out = None
            if self.report is not None:
                out = self.report / f"{adapter.name}{self.suffix}"
                if str(out) in {str(p) for p in self.folders.values()}:  # a second selection of one adapter
                    out = self.report / f"{adapter.name}-{len(self.folders)}{self.suffix}"
                self.folders[out.name] = out
            self.cache[key] = conformance(adapter, suite=selection.suite, cases=_list(selection.cases),
                                          dtypes=_list(selection.dtypes), devices=_list(selection.devices), out=out)
        return self.cache[key]

    def finish(self) -> int:
        """Reports and gates at the end of the session (lines for the terminal summary); 1 when a gate fails."""
        from harness import report

        code = 0
        for label, folder in self.folders.items():
            report.write_report(folder)
            self.lines.append(f"{label}: {folder}/report.md, {folder}/report.html")
            if self.baseline is not None:
                code = max(code, self._gate(label.removesuffix(self.suffix), folder))
        return code

    def _gate(self, adapter: str, folder: Path) -> int:
        from harness.gate import Thresholds, gate, markdown, write
        from harness.gate.baseline import load_baseline, load_run_tables
        from reference.errors import InputError

        base = Path(self.baseline) / adapter
        try:
            result = gate(load_baseline(str(base)), load_run_tables([str(folder)]), Thresholds(2.0), "off")
        except InputError as exc:
            self.lines.append(f"gate {adapter}: error: {exc}")
            return 2
        write(result, str(folder))
        self.lines.extend(markdown(result).rstrip().splitlines())
        return result.exit_code


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.folders:
        return
    code = state.finish()
    if code and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED if code == 1 else pytest.ExitCode.USAGE_ERROR


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and state.lines:
        terminalreporter.section("rmsprop-harness")
        for line in state.lines:
            terminalreporter.write_line(line)
