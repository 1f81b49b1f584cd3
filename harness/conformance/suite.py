"""Loading declarative suites: TOML files in ``suites/`` (format: docs/suites.md), validated on load.

`load_suite` expands ``[defaults]``, every ``[[case]]`` (with its ``matrix``) and the ``[[parity]]``
scenarios into a `harness.conformance.cases.Suite`. Any unknown key, wrong type or bad value
raises `SuiteError` with one line naming the file, the key and the problem (and the closest
allowed key for a misspelling).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.adapters import ADAPTERS, ALL, resolve
from harness.base import envs
from harness.base.limits import MAX_PARAMS, MAX_RECORDS, MAX_STEPS, LimitError, check_shapes
from harness.base.streams import DTYPES, KINDS, GradientStream, Shapes, StreamError, StreamSpec
from harness.compare.parity import STANDARD_SHAPES, STANDARD_STEPS, ParityError, Scenario
from harness.conformance.cases import Case, Schedule, ScheduleError, Suite
from harness.training.suite import train_specs
from reference import RMSpropSpec, implementations, presets
from reference.errors import InputError, InputValueError
from reference.translate import KNOBS, Unsupported, knob_args

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"

CASE_KEYS = ("name", "description", "adapters", "args", "spec", "stream", "shapes", "steps", "dtypes", "devices",
             "seed", "schedule", "init_scale", "records", "timeout", "matrix")
DEFAULT_KEYS = tuple(k for k in CASE_KEYS if k not in ("name", "description", "matrix"))
MATRIX_AXES = (*KNOBS, "schedule", "stream")
TOP_KEYS = ("name", "description", "defaults", "case", "parity", "train", "environments")
PARITY_KEYS = ("name", "description", "settings", "presets", "stream", "shapes", "steps", "seed", "schedule",
               "scales")
DEVICES = ("cpu", "gpu")
MAX_TIMEOUT = 86_400.0  # seconds per task
_SPEC_CHOICES = ("eps_placement", "centered_order", "lr_placement", "weight_decay_mode", "ema_start", "framework")
BUILTIN_DEFAULTS: dict[str, Any] = {
    "adapters": ["torch.single", "torch.foreach", "keras.tensorflow", "optax"],
    "steps": 100,
    "dtypes": ["float32", "float64"],
    "devices": "auto",
    "seed": 0,
    "shapes": {"weight": [2, 3], "bias": [2]},
    "stream": {"kind": "gaussian"},
    "init_scale": 1.0,
    "records": 16,
    "timeout": 600.0,
}


class SuiteError(InputValueError):
    """A suite that cannot be loaded; the message is one line naming file, key and problem."""


def builtin_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (``default``, ``seed``, ``edge``, ...) or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in builtin_suites():
        path = builtin_suites()[str(name_or_path)]
    try:
        found = path.is_file()
        raw = path.read_bytes() if found else b""
    except (OSError, ValueError) as exc:
        raise SuiteError(f"{str(name_or_path)[:200]!r}: unreadable ({getattr(exc, 'strerror', None) or exc})") from None
    if not found:
        known = ", ".join(builtin_suites())
        raise SuiteError(f"{name_or_path}: no such suite file or built-in suite (built-in: {known})")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: not valid TOML ({exc})") from None
    return _Loader(path).suite(data, hashlib.sha256(raw).hexdigest())


def _suggest(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed)})"


class _Loader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> SuiteError:
        return SuiteError(f"{self.path}: {where}: {problem}")

    def keys(self, table: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}{key}", f"unknown key{_suggest(key, allowed)}")

    def suite(self, data: dict, digest: str) -> Suite:
        if "bench" in data and "case" not in data:
            raise self.fail("bench", f"a benchmark suite: run it with rmsprop-harness bench --suite {self.path.stem}")
        self.keys(data, TOP_KEYS, "")
        name = data.get("name", self.path.stem)
        description = data.get("description", "")
        for key, value in (("name", name), ("description", description)):
            if not isinstance(value, str):
                raise self.fail(key, f"expected a string, got {type(value).__name__}")
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self.fail("defaults", "expected a table [defaults]")
        self.keys(defaults, DEFAULT_KEYS, "defaults.")
        cases = data.get("case", [] if "train" in data else None)  # a training-only suite has no cases
        if not isinstance(cases, list) or not (cases or "train" in data) or not all(isinstance(c, dict) for c in cases):
            raise self.fail("case", "expected one or more [[case]] tables")
        out, seen = [], set()
        for i, raw_case in enumerate(cases):
            for expanded in self.expand(i, raw_case, defaults):
                case = self.case(i, expanded, defaults)
                if case.name in seen:
                    raise self.fail(f"case[{i}].name", f"duplicate case name {case.name!r}")
                seen.add(case.name)
                out.append(case)
        return Suite(name=name, description=description, path=self.path, digest=digest, cases=tuple(out),
                     parity=self.parities(data.get("parity", [])), train=train_specs(data.get("train", []), self),
                     environments=self.environments(data.get("environments", {})))

    def environments(self, tables: Any) -> tuple[envs.Environment, ...]:
        try:  # [environments.NAME] tables: package sets the adapters also run in (harness.base.envs)
            return envs.parse_tables(tables)
        except envs.EnvSpecError as exc:
            raise SuiteError(f"{self.path}: {exc}") from None

    def parities(self, tables: Any) -> tuple[Scenario, ...]:
        """``[[parity]]`` tables: settings stated once, compared across presets (`harness.compare.parity`)."""
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.fail("parity", "expected [[parity]] tables")
        out, seen = [], set()
        for i, table in enumerate(tables):
            where = f"parity[{i}]."
            self.keys(table, PARITY_KEYS, where)
            name = table.get("name", f"parity{i}")
            if not isinstance(name, str) or name in seen:
                raise self.fail(where + "name", f"expected a unique name, got {name!r}")
            seen.add(name)
            settings = table.get("settings", {})
            if not isinstance(settings, dict):
                raise self.fail(where + "settings", "expected a table { lr = ..., decay = ..., ... }")
            names = table.get("presets", list(implementations.parity_presets()))
            if not isinstance(names, list) or not all(isinstance(p, str) for p in names):
                raise self.fail(where + "presets", f"expected a list of preset names, got {names!r}")
            steps = table.get("steps", STANDARD_STEPS)
            seed = table.get("seed", 0)
            for key, value in (("steps", steps), ("seed", seed)):
                if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "steps" else 0):
                    raise self.fail(where + key, f"expected an integer >= {1 if key == 'steps' else 0}, got {value!r}")
            stream = self.stream(where, table.get("stream", {"kind": "gaussian"}), seed)
            shapes = self.shapes(where, table.get("shapes", {k: list(v) for k, v in STANDARD_SHAPES.items()}))
            if stream.kind == "recorded":  # shapes and (unless given) steps come from the file
                try:
                    recording = GradientStream(stream)
                except StreamError as exc:
                    raise self.fail(where + "stream.path", str(exc)) from None
                shapes = recording.shapes
                steps = table.get("steps", recording.length)
                if steps > recording.length:
                    raise self.fail(where + "steps", f"{steps} steps asked, the recording has {recording.length}")
            schedule = self.schedule(where, table.get("schedule"), steps)
            scales = table.get("scales", "auto")
            if isinstance(scales, list):
                scales = tuple(scales)
            try:
                scenario = Scenario(name, settings, tuple(names), stream, shapes, steps, seed,
                                    None if schedule is None else tuple(schedule.lrs(steps).tolist()),
                                    str(table.get("description", "")), scales)
                scenario.specs()  # every preset takes the settings (or reports why not)
            except (ParityError, TypeError, ValueError) as exc:
                raise self.fail(where.rstrip("."), str(exc)) from None
            out.append(scenario)
        return tuple(out)

    def expand(self, i: int, raw: dict, defaults: dict) -> list[dict]:
        """A case with ``matrix = { knob = [values], ... }`` -> one case per combination.

        Knob axes (lr, decay, eps, momentum, centered, weight_decay) set each framework's own
        argument for that knob (`reference.translate.knob_args`), or the knob of a ``spec``;
        a framework without the argument gets an ``unsupported`` row for a non-zero value.
        ``schedule`` takes schedule tables or ``"none"``, ``stream`` stream tables."""
        if "matrix" not in raw:
            return [raw]
        where = f"case[{i}].matrix"
        matrix = raw["matrix"]
        if not isinstance(matrix, dict) or not matrix:
            raise self.fail(where, "expected a table { knob = [values], ... }")
        self.keys(matrix, MATRIX_AXES, f"{where}.")
        for axis, values in matrix.items():
            if not isinstance(values, list) or not values:
                raise self.fail(f"{where}.{axis}", f"expected a non-empty list of values, got {values!r}")
        own = raw if ("args" in raw or "spec" in raw) else defaults
        args, spec = own.get("args"), own.get("spec")
        try:
            adapters = resolve(list({**BUILTIN_DEFAULTS, **defaults, **raw}["adapters"]), targets=False)
        except (KeyError, TypeError):
            return [{k: v for k, v in raw.items() if k != "matrix"}]  # case() reports the bad adapter list
        out = []
        for combo in itertools.product(*matrix.values()):
            values = dict(zip(matrix, combo, strict=True))
            new = {k: v for k, v in raw.items() if k != "matrix"}
            new["name"] = f"{raw.get('name')}/" + "/".join(
                f"{k}={_label(v, matrix[k])}" for k, v in values.items())
            if "schedule" in values:
                new["schedule"] = None if values["schedule"] == "none" else values["schedule"]
            if "stream" in values:
                new["stream"] = values["stream"]
            knobs = {k: v for k, v in values.items() if k in KNOBS}
            if spec is not None and args is None:
                new["spec"] = dict(spec)
                for knob, value in knobs.items():
                    new["spec"] |= knob_args("spec", knob, value)
            else:
                new["args"], new["_unsupported"] = self.matrix_args(args or {}, adapters, knobs)
            out.append(new)
        return out

    def matrix_args(self, args: dict, adapters: list[str], knobs: dict) -> tuple[dict, dict]:
        """Each family's (or adapter's) arguments with the knobs applied, and which cannot take them."""
        keys = list(dict.fromkeys([*args, *(ADAPTERS[a].family for a in adapters)]))
        out, unsupported = {}, {}
        for key in keys:
            preset = ADAPTERS[key].preset if key in ADAPTERS else next(
                ADAPTERS[a].preset for a in adapters if ADAPTERS[a].family == key)
            table = dict(args.get(key, presets.REQUIRED_DEFAULTS.get(preset, {})))
            for knob, value in knobs.items():
                try:
                    table |= knob_args(preset, knob, value)
                except Unsupported as exc:
                    unsupported[key] = exc
            out[key] = table
        return out, unsupported

    def case(self, i: int, raw: dict, defaults: dict) -> Case:
        label = f"case[{i}]"
        raw = dict(raw)
        unsupported = raw.pop("_unsupported", {})
        self.keys(raw, CASE_KEYS, f"{label}.")
        name = raw.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+=/-]+", name):
            raise self.fail(f"{label}.name", f"expected a name of letters, digits and _.+- , got {name!r}")
        where = f"case {name!r} "
        merged = {**BUILTIN_DEFAULTS, **defaults, **raw}
        explicit = {**defaults, **raw}

        def get(key: str, kinds: type | tuple, check=None, problem: str = "") -> Any:
            value = merged[key]
            if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
                raise self.fail(where + key, f"expected {problem or kinds}, got {value!r}")
            if not isinstance(value, kinds) or (check is not None and not check(value)):
                raise self.fail(where + key, f"expected {problem}, got {value!r}")
            return value

        patterns = get("adapters", list, lambda v: all(isinstance(a, str) for a in v) and v,
                       "a non-empty list of adapter names")
        try:
            adapters = tuple(resolve(patterns, targets=False))
        except KeyError as exc:
            raise self.fail(where + "adapters", str(exc.args[0])) from None
        steps = get("steps", int, lambda v: 1 <= v <= MAX_STEPS, f"an integer in [1, {MAX_STEPS:.0e}]")
        dtypes = tuple(get("dtypes", list, lambda v: v and all(d in DTYPES for d in v),
                           f"a non-empty list from {', '.join(DTYPES)}"))
        devices = merged["devices"]
        if devices != "auto":
            devices = get("devices", list, lambda v: v and all(d in (*DEVICES, "cuda") for d in v),
                          '"auto" or a list from cpu, gpu (or cuda)')
            devices = tuple(dict.fromkeys("gpu" if d == "cuda" else d for d in devices))
        seed = get("seed", int, lambda v: 0 <= v < 2**63, "an integer >= 0")
        init_scale = float(get("init_scale", (int, float), lambda v: 0 < v < math.inf, "a number > 0"))
        records = get("records", int, lambda v: 2 <= v <= MAX_RECORDS, f"an integer in [2, {MAX_RECORDS}]")
        timeout = float(get("timeout", (int, float), lambda v: 0 < v <= MAX_TIMEOUT,
                            f"a number of seconds in (0, {MAX_TIMEOUT:g}]"))
        stream = self.stream(where, get("stream", dict, None, "a table { kind = ..., ... }"), seed)
        shapes = self.shapes(where, get("shapes", dict, None, "a table { name = [dims], ... }"))
        if stream.kind == "recorded":
            try:
                recording = GradientStream(stream, shapes if "shapes" in explicit else None)
            except StreamError as exc:
                raise self.fail(where + "stream.path", str(exc)) from None
            shapes = recording.shapes
            if "steps" not in explicit:
                steps = recording.length
            elif steps > recording.length:
                raise self.fail(where + "steps", f"{steps} steps asked, the recording has {recording.length}")
        schedule = self.schedule(where, merged.get("schedule"), steps)
        own = raw if ("args" in raw or "spec" in raw) else defaults  # a case's own args/spec win as a pair
        args, spec = own.get("args"), own.get("spec")
        if args is not None and spec is not None:
            raise self.fail(where + "spec", "give either args (framework-native) or spec (semantics), not both")
        if isinstance(args, dict) and ALL in patterns:  # "all" with native arguments: the adapters written for
            named = set(resolve([p for p in patterns if p != ALL], targets=False))
            adapters = tuple(a for a in adapters if a in named or a in args or ADAPTERS[a].family in args)
            if not adapters:
                raise self.fail(where + "args", "no adapter of this case takes these arguments")
        case = Case(name=name, description=str(raw.get("description", "")), adapters=adapters, stream=stream,
                    shapes=shapes, steps=steps, dtypes=dtypes, devices=devices, seed=seed, schedule=schedule,
                    init_scale=init_scale, records=records, timeout=timeout, unsupported=unsupported)
        if spec is not None:
            case = replace(case, spec=self.spec(where, spec))
        if args is not None:
            case = replace(case, args=self.args(where, args, adapters))
            for adapter in adapters:  # the preset validates the framework's own argument names
                key = adapter if adapter in case.args else ADAPTERS[adapter].family
                try:
                    case.reference_spec(adapter)
                except Unsupported:
                    pass  # a matrix knob the framework lacks: an unsupported row, not a suite error
                except InputError as exc:
                    raise self.fail(f"{where}args.{key}", str(exc)) from None
        return case

    def stream(self, where: str, table: dict, seed: int) -> StreamSpec:
        kind = table.get("kind", "gaussian")
        if kind not in KINDS or kind == "arrays":
            allowed = tuple(k for k in KINDS if k != "arrays")
            raise self.fail(where + "stream.kind", f"unknown kind {kind!r}{_suggest(str(kind), allowed)}")
        options = {k: v for k, v in table.items() if k != "kind"}
        if kind == "recorded" and isinstance(options.get("path"), str):
            options["path"] = str((self.path.parent / options["path"]).resolve())
        for key in options:
            if key not in KINDS[kind]:
                raise self.fail(f"{where}stream.{key}", f"unknown option for kind {kind!r}"
                                f"{_suggest(key, tuple(KINDS[kind]) or ('none',))}")
        try:
            return StreamSpec(kind, seed, options)
        except StreamError as exc:
            raise self.fail(where + "stream", str(exc)) from None

    def shapes(self, where: str, table: dict) -> Shapes:
        if not table:
            raise self.fail(where + "shapes", "expected at least one tensor")
        out = {}
        for name, dims in table.items():
            if not isinstance(dims, list) or not dims or not all(
                    isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_PARAMS for d in dims):
                raise self.fail(f"{where}shapes.{name}", f"expected a non-empty list of dimensions >= 1, got {dims!r}")
            out[name] = tuple(dims)
        try:
            check_shapes(out, "shapes")
        except LimitError as exc:
            raise self.fail(where + "shapes", str(exc).removeprefix("shapes: ")) from None
        return out

    def schedule(self, where: str, table: Any, steps: int) -> Schedule | None:
        if table is None:
            return None
        try:
            return Schedule.parse(table, steps, _suggest)
        except ScheduleError as exc:
            raise self.fail(f"{where}schedule.{exc.key}", exc.problem) from None

    def spec(self, where: str, table: Any) -> RMSpropSpec:
        if not isinstance(table, dict):
            raise self.fail(where + "spec", "expected a table of RMSpropSpec knobs")
        allowed = tuple(k for k in RMSpropSpec().knobs() if k not in ("effective_eps_placement", "lr_schedule"))
        self.keys(table, allowed, f"{where}spec.")
        for key, value in table.items():
            if key != "hyperparam_rounding" and isinstance(value, str) and key not in _SPEC_CHOICES:
                raise self.fail(f"{where}spec.{key}", f"expected a number or flag, got the string {value!r}")
        try:
            return RMSpropSpec(**table)
        except InputError as exc:
            raise self.fail(where + "spec", str(exc)) from None

    def args(self, where: str, table: Any, adapters: tuple[str, ...]) -> dict[str, dict]:
        if not isinstance(table, dict):
            raise self.fail(where + "args", "expected a table of tables: args.<adapter or family> = {...}")
        allowed = tuple(dict.fromkeys([*adapters, *(ADAPTERS[a].family for a in adapters)]))
        for key, value in table.items():
            if key not in allowed:
                raise self.fail(f"{where}args.{key}", f"not an adapter or family of this case{_suggest(key, allowed)}")
            if not isinstance(value, dict):
                raise self.fail(f"{where}args.{key}", f"expected a table of the framework's arguments, got {value!r}")
        return table


def _label(value: Any, axis: list) -> str:
    """A value's short name in an expanded case name."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        kind = str(value.get("kind", "?"))
        kinds = [v.get("kind") for v in axis if isinstance(v, dict)]
        return kind if kinds.count(kind) == 1 else f"{kind}{axis.index(value)}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


__all__ = ["Case", "Schedule", "Suite", "SuiteError", "Unsupported", "builtin_suites", "load_suite"]
