"""A suite's ``[[train]]`` tables (docs/suites.md) as `TrainSpec`s, validated on load."""

from __future__ import annotations

import math
from typing import Any

from harness.training.runner import TrainSpec
from reference.errors import InputError

KEYS = ("name", "description", "workloads", "frameworks", "settings", "dtypes", "steps", "base", "set", "timeout")
_LISTS = ("workloads", "frameworks", "settings", "dtypes")


def train_specs(tables: Any, loader: Any) -> tuple[TrainSpec, ...]:
    """``loader`` is the suite loader (`harness.conformance.suite`): its ``keys`` check names the closest
    allowed key, its ``fail(where, problem)`` is the one-line error."""
    fail = loader.fail
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise fail("train", "expected [[train]] tables")
    out, seen = [], set()
    for i, table in enumerate(tables):
        where = f"train[{i}]."
        loader.keys(table, KEYS, where)
        kwargs: dict[str, Any] = {"name": table.get("name", f"train{i}")}
        for key in _LISTS:
            if key in table:
                value = table[key]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
                    raise fail(f"{where}{key}", "expected a non-empty list of strings")
                kwargs[key] = tuple(value)
        if "steps" in table:
            if not isinstance(table["steps"], int) or isinstance(table["steps"], bool):
                raise fail(f"{where}steps", "expected an integer")
            kwargs["steps"] = table["steps"]
        if "base" in table:
            if not isinstance(table["base"], str):
                raise fail(f"{where}base", "expected a framework name")
            kwargs["base"] = table["base"]
        if "set" in table:
            if not isinstance(table["set"], dict):
                raise fail(f"{where}set", "expected a table of neutral knobs, e.g. { lr = 1e-3 }")
            kwargs["values"] = dict(table["set"])
        if "timeout" in table:
            t = table["timeout"]
            if not isinstance(t, int | float) or isinstance(t, bool) or not (0 < t < math.inf):
                raise fail(f"{where}timeout", "expected seconds > 0")
            kwargs["timeout"] = float(t)
        if kwargs["name"] in seen:
            raise fail(f"{where}name", f"duplicate [[train]] name {kwargs['name']!r}")
        seen.add(kwargs["name"])
        try:
            out.append(TrainSpec(**kwargs).check())
        except InputError as exc:
            raise fail(where.rstrip("."), str(exc)) from None
    return tuple(out)


__all__ = ["KEYS", "train_specs"]
