"""Shards: one task's result, self-contained, the unit of resume and merge.

A run is a list of tasks, each a canonical JSON spec (`spec_hash`: SHA-256 of the spec with
sorted keys, which also names the harness source it ran with, `code_digest`). Each finished
task leaves one shard in its run folder, ``shards/<hash>.json``::

    {"format": "rmsprop-harness-shard", "schema": 2, "hash": ..., "spec": {...}, "order": 17,
     "status": "ok", "environment": {...}, "machine": "<fingerprint digest>", "hellos": [...],
     "seconds": 0.8, "finished": "...", "env": {...}, "tables": {"summary": [{...}], ...}}

``tables`` holds the task's rows of every table it contributes to (JSON keeps float64 exactly:
Python writes the shortest repr that reads back bit-identical, NaN and infinities included), so
the run's tables are the concatenation of its shards in plan order, whichever process,
machine or attempt produced each one. A shard is written atomically (`write_atomic`), so a
``kill -9`` leaves either the whole shard or none. JSON, not pickles: a shard from another
machine is data, never code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.base import schema
from harness.base.runfolder import SHARDS, RunFolderError, read_bytes, refuse_symlink, write_atomic

FORMAT = "rmsprop-harness-shard"
FOLDER = SHARDS
#: Statuses a shard may carry: a conformance row's, or ``done`` / ``fail`` / ``error`` for a whole
#: parity or training task.
STATUSES = (*schema.STATUSES, "done")
#: What ``--rerun failed`` keeps: a task whose result is a finished answer, not a failure to get one.
KEPT_ON_RERUN_FAILED = ("ok", "unsupported", "done")


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"not JSON serialisable in a shard: {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (sorted keys, no spaces): what a hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default).encode()


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(spec)).hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over the harness's and the reference's source and data files: a shard made by other
    code is not this run's result (a fixed metric must not be hidden behind an old shard)."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in ("harness", "reference"):
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".toml", ".npz", ".json") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(kw_only=True)
class Shard:
    """One finished task (see the module docstring)."""

    hash: str
    spec: dict[str, Any]
    order: int
    status: str
    tables: dict[str, list[dict[str, Any]]]
    environment: dict[str, Any] = field(default_factory=dict)
    machine: str = ""
    hellos: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = math.nan
    env: dict[str, Any] = field(default_factory=dict)  # what the task adds to env.json (parity, training keys)
    finished: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def encode(self) -> bytes:
        body = {"format": FORMAT, "schema": schema.VERSION, "hash": self.hash, "spec": self.spec,
                "order": self.order, "status": self.status, "environment": self.environment,
                "machine": self.machine, "hellos": self.hellos, "seconds": self.seconds, "env": self.env,
                "finished": self.finished, "tables": self.tables}
        return json.dumps(body, default=_default).encode()

    @classmethod
    def decode(cls, data: bytes, where: str = "shard") -> Shard:
        """A shard from its bytes; `RunFolderError` (one line) for anything that is not a whole shard."""
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{where}: not a shard ({type(exc).__name__})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise RunFolderError(f"{where}: not a shard")
        if body.get("schema") != schema.VERSION:
            raise RunFolderError(f"{where}: shard schema {body.get('schema')!r}; this harness reads {schema.VERSION}")
        tables = body.get("tables")
        if not isinstance(tables, dict) or any(
                name not in schema.COLUMNS or not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows)
                for name, rows in tables.items()):
            raise RunFolderError(f"{where}: a shard whose tables are not rows of known tables")
        if body.get("status") not in STATUSES or not isinstance(body.get("spec"), dict):
            raise RunFolderError(f"{where}: a shard without a status or spec")
        if spec_hash(body["spec"]) != body.get("hash"):
            raise RunFolderError(f"{where}: the shard's spec does not match its hash (edited?)")
        order = body.get("order")
        if not isinstance(order, int) or isinstance(order, bool) or order < 0:
            raise RunFolderError(f"{where}: a shard without its place in the plan")
        return cls(hash=body["hash"], spec=body["spec"], order=order, status=body["status"], tables=tables,
                   environment=_dict(body.get("environment")), machine=str(body.get("machine", "")),
                   hellos=[h for h in body.get("hellos") or [] if isinstance(h, dict)],
                   seconds=float(body.get("seconds") if isinstance(body.get("seconds"), int | float) else math.nan),
                   env=_dict(body.get("env")), finished=str(body.get("finished", "")))

    def roundtrip(self) -> Shard:
        """This shard as a reader will see it: its rows through JSON, so a fresh task and a resumed
        one give identical tables by construction."""
        return Shard.decode(self.encode())

    def same_result(self, other: Shard) -> bool:
        """Whether two shards of one task hold the same rows, timings aside (a merge's duplicate check)."""
        return _strip(self.tables) == _strip(other.tables) and self.status == other.status


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strip(tables: dict[str, list[dict]]) -> str:
    """The rows without their timing columns, as canonical text (NaN equal to NaN)."""
    out = {name: [{k: v for k, v in row.items() if k not in schema.TIMINGS.get(name, ())} for row in rows]
           for name, rows in tables.items()}
    return json.dumps(out, sort_keys=True)


class ShardStore:
    """The ``shards/`` folder of a run folder: atomic writes, verified reads, no symlinks followed."""

    def __init__(self, folder: str | Path, create: bool = True):
        self.path = Path(folder) / FOLDER
        refuse_symlink(self.path, "shards folder")
        if create:
            self.path.mkdir(exist_ok=True)

    def file(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise RunFolderError(f"{digest!r}: not a task hash")
        return self.path / f"{digest}.json"

    def write(self, shard: Shard) -> bytes:
        data = shard.encode()
        write_atomic(self.file(shard.hash), lambda p: p.write_bytes(data))
        return data

    def read(self, digest: str) -> Shard | None:
        """The shard of task ``digest``, or None when there is none or it is not a whole, matching shard."""
        path = self.file(digest)
        if not path.exists() and not path.is_symlink():
            return None
        try:
            shard = Shard.decode(read_bytes(path), str(path))
        except RunFolderError:
            return None  # a foreign or damaged file is not a result: the task runs again
        return shard if shard.hash == digest else None

    def __iter__(self) -> Iterator[Shard]:
        """Every whole shard here (another run's folder read by ``merge``); damaged files raise."""
        if not self.path.is_dir():
            return
        for path in sorted(self.path.glob("*.json")):
            shard = Shard.decode(read_bytes(path), str(path))
            if path.stem != shard.hash:
                raise RunFolderError(f"{path}: named for another task than the one it holds")
            yield shard

    def prune(self, keep: set[str]) -> None:
        """Remove the shards of tasks that are not in this run's plan (and leftover temporaries)."""
        if not self.path.is_dir():
            return
        for path in self.path.iterdir():
            if path.is_symlink() or not path.is_file():
                continue
            if path.name.startswith(".") or (path.suffix == ".json" and path.stem not in keep):
                os.unlink(path)


__all__ = ["FOLDER", "FORMAT", "KEPT_ON_RERUN_FAILED", "STATUSES", "Shard", "ShardStore", "canonical", "code_digest",
           "spec_hash"]
