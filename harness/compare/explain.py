"""`rmsprop-harness explain`: the resolved knobs of several presets, side by side.

A preset is named alone (``torch``: the framework's defaults) or with its own
constructor arguments (``torch:lr=0.01,momentum=0.9``), so a user porting a model
sees exactly which semantics differ before running anything.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence

import pandas as pd

from reference import RMSpropSpec, implementations, presets
from reference.errors import InputError, InputValueError

#: Knobs shown first, in the order a porting user cares about them.
ORDER = (
    "lr", "decay", "eps", "effective_eps_placement", "initial_accumulator", "centered",
    "centered_order", "momentum", "lr_placement", "nesterov", "bias_correction",
    "weight_decay", "weight_decay_mode", "maximize", "hyperparam_rounding",
)
HIDDEN = {"framework", "eps_placement", "legacy_eps_switch"}  # folded into effective_eps_placement


class ExplainError(InputValueError):
    """A preset expression that cannot be resolved (unknown preset, bad argument)."""


def parse_preset(expr: str) -> tuple[str, RMSpropSpec]:
    """``name`` or ``name:arg=value,arg=value`` -> (label, spec)."""
    name, _, args = expr.partition(":")
    name = name.strip()
    kwargs = parse_args(name, _split_args(args), where=expr)
    try:
        spec = presets.PRESETS[name](**kwargs)
    except InputError as exc:
        raise ExplainError(str(exc)) from None
    return expr if args else name, spec


def parse_args(name: str, items: Sequence[str], where: str = "") -> dict[str, object]:
    """``["lr=0.01", "alpha=0.99"]`` -> the preset's keyword arguments (its required defaults
    first), values as Python literals; `ExplainError` naming the bad item otherwise."""
    if name not in presets.PRESETS:
        raise ExplainError(f"unknown preset {name!r}; known: {', '.join(presets.PRESETS)}")
    where = where or name
    kwargs = dict(presets.REQUIRED_DEFAULTS.get(name, {}))
    for item in filter(None, (a.strip() for a in items)):
        key, eq, raw = item.partition("=")
        if not eq:
            raise ExplainError(f"{where!r}: expected arg=value, got {item!r}")
        try:
            kwargs[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ExplainError(f"{where!r}: {key.strip()}={raw.strip()} is not a Python literal") from None
    return kwargs


def _split_args(args: str) -> list[str]:
    """Split on commas outside brackets (values may be tuples or lists)."""
    parts, depth, cur = [], 0, ""
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def knob_table(specs: dict[str, RMSpropSpec]) -> pd.DataFrame:
    """Knobs as rows, presets as columns, plus a boolean ``differs`` column."""
    columns = {label: spec.effective_knobs() for label, spec in specs.items()}
    first = next(iter(columns.values()))
    names = [*ORDER, *(k for k in first if k not in ORDER and k not in HIDDEN)]
    frame = pd.DataFrame({label: [_show(knobs[n]) for n in names] for label, knobs in columns.items()},
                         index=pd.Index(names, name="knob"))
    frame["differs"] = frame.nunique(axis=1) > 1
    return frame


def _json_value(value: object) -> object:
    """A knob's value as JSON has it: numbers, booleans, null; anything else as its text (NaN and infinities too,
    which JSON has no numbers for)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def explain(exprs: Sequence[str] = (), only_differences: bool = False, fmt: str = "table") -> str:
    """Render the side-by-side knob table (``table`` | ``markdown`` | ``json``)."""
    exprs = list(exprs) or list(presets.PRESETS)
    specs = dict(parse_preset(e) for e in exprs)
    frame = knob_table(specs)
    if only_differences and len(specs) > 1:
        frame = frame[frame["differs"]]
    notes = {label: list(spec.notes) for label, spec in specs.items() if spec.notes}
    rewrites = _rewrites(specs)
    if fmt == "json":  # the knobs' own values: JSON numbers, booleans and null, not their table text
        values = {label: spec.effective_knobs() for label, spec in specs.items()}
        knobs = {k: {label: _json_value(values[label].get(k)) for label in specs} for k in frame.index}
        return json.dumps({"knobs": knobs,
                           "differs": frame.index[frame["differs"]].tolist(), "notes": notes,
                           "rewrites": rewrites}, indent=2)
    shown = frame.drop(columns="differs")
    if fmt == "markdown":
        shown = shown.copy()
        shown.index = [f"**{k}**" if d else k for k, d in zip(shown.index, frame["differs"], strict=True)]
        text = _markdown(shown)
        legend = "\n\nBold knobs differ between the presets; `-` means the knob has no effect there."
        return text + legend + _notes_text(notes) + _rewrites_text(rewrites)
    return _rich_table(shown, frame["differs"]) + _notes_text(notes) + _rewrites_text(rewrites)


def _rewrites(specs: dict[str, RMSpropSpec]) -> dict[str, list[str]]:
    """What each implementation shown can silently rewrite, from its record (whatever the arguments)."""
    names = dict.fromkeys(label.partition(":")[0] for label in specs)
    return {n: list(r.rewrites) for n in names if (r := implementations.get(n)).rewrites}


def _rewrites_text(rewrites: dict[str, list[str]]) -> str:
    if not rewrites:
        return ""
    lines = ["", "", "What each can silently rewrite, with other arguments (reference/implementations):"]
    lines += [f"- {name}: {'; '.join(items)}" for name, items in rewrites.items()]
    return "\n".join(lines)


def _notes_text(notes: dict[str, list[str]]) -> str:
    if not notes:
        return ""
    lines = ["", "", "Silent rewrites and caveats:"]
    lines += [f"- {label}: {note}" for label, items in notes.items() for note in items]
    return "\n".join(lines)


def _markdown(frame: pd.DataFrame) -> str:
    header = ["knob", *map(str, frame.columns)]
    rows = [[str(i), *map(str, r)] for i, r in zip(frame.index, frame.itertuples(index=False), strict=True)]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _rich_table(frame: pd.DataFrame, differs: pd.Series) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="RMSprop semantics (* = differs; - = has no effect here)", show_lines=False)
    table.add_column("knob", no_wrap=True)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for (knob, row), diff in zip(frame.iterrows(), differs, strict=True):
        style = "bold yellow" if diff else None
        table.add_row(("* " if diff else "  ") + knob, *map(str, row), style=style)
    import sys

    console = Console(width=max(100, 24 + 16 * len(frame.columns)), force_terminal=sys.stdout.isatty())
    with console.capture() as capture:
        console.print(table)
    return capture.get().rstrip()
