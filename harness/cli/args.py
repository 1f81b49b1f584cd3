"""Command-line values turned into library objects, each bad one refused with one line (`CliError`).

Lists (``--adapter a,b``, repeatable) may not contain an empty name: ``--adapter ''`` is an
error, never "all". Streams are written ``KIND`` or ``KIND:option=value,...``
(``gaussian:scale=1e-4``, ``lognormal:sigma=3``) or as the path of a recorded ``.npz``.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from harness.base.runfolder import check_path
from harness.base.streams import KINDS, GradientStream, StreamSpec
from reference.errors import InputValueError


class CliError(InputValueError):
    """A command-line value that cannot be used; one line."""


def split(values: list[str] | None, flag: str) -> list[str] | None:
    """Comma-separated, repeatable values; None when the flag was not given."""
    if values is None:
        return None
    out = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                raise CliError(f"{flag} {value!r}: an empty name (name what you want; leave the flag out for all)")
            out.append(item.strip())
    return list(dict.fromkeys(out))


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw  # a bare word (value=nan) stays a string; the stream validates it


def stream(text: str, seed: int) -> StreamSpec:
    """``KIND``, ``KIND:opt=value,...`` or a recorded ``.npz`` path as a stream (`CliError` otherwise)."""
    text = text.strip()
    known = ", ".join(k for k in KINDS if k not in ("arrays", "recorded"))
    if not text:
        raise CliError(f"--stream '': give a kind ({known}) or a recorded .npz")
    kind, _, rest = text.partition(":")
    if kind not in KINDS and (text.endswith(".npz") or _is_file(text)):
        path = check_path(text, "--stream")
        return StreamSpec("recorded", seed, {"path": str(path.resolve())})
    if kind not in KINDS or kind in ("arrays", "recorded"):
        raise CliError(f"--stream {text!r} is not a stream kind ({known}, with options as kind:option=value,...) "
                       "or a recorded .npz file")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise CliError(f"--stream {text!r}: expected option=value, got {item!r}")
        options[key.strip()] = _literal(raw.strip())
    return StreamSpec(kind, seed, options)


def scales(text: str | None) -> tuple[float, ...] | str:
    """``--scales``: auto (sweep unless the stream fixes its scale), none, or comma-separated gains."""
    if text is None or text.strip() in ("auto", "none"):
        return "auto" if text is None else text.strip()
    out = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise CliError(f"--scales {text!r}: auto, none or comma-separated numbers > 0") from None
        if not (math.isfinite(value) and value > 0):
            raise CliError(f"--scales {text!r}: every scale must be a finite number > 0")
        out.append(value)
    return tuple(out)


def scenario_stream(spec: StreamSpec, steps: int | None) -> tuple[dict[str, tuple[int, ...]] | None, int]:
    """Shapes and steps a scenario takes from its stream: a recording fixes both (steps: at most its
    length); any other stream uses the standard shapes and 200 steps unless told."""
    from harness.compare.parity import STANDARD_STEPS

    if spec.kind != "recorded":
        return None, STANDARD_STEPS if steps is None else steps
    recording = GradientStream(spec)
    length = recording.length or 0
    if steps is not None and steps > length:
        raise CliError(f"--steps {steps}: the recording has {length} steps")
    return recording.shapes, length if steps is None else steps


__all__ = ["CliError", "scales", "scenario", "scenario_stream", "split", "stream"]


def scenario(name: str, args, presets: tuple[str, ...], settings: dict | None = None):
    """The `harness.compare.parity.Scenario` a translate or parity command line describes (steps, stream,
    scales, seed)."""
    from harness.compare.parity import Scenario

    stream_spec = stream(args.stream, args.seed)
    shapes, steps = scenario_stream(stream_spec, args.steps)
    extra = {} if shapes is None else {"shapes": shapes}
    return Scenario(name, settings or {}, presets, stream_spec, steps=steps, seed=args.seed,
                    scales=scales(args.scales), **extra)
