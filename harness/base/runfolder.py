"""The run folder on disk: safe writes, one writer at a time, atomic generations, versioned loading.

A run folder (``rmsprop-harness run`` or ``bench``) holds its tables as Parquet files, its
``env.json`` and a manifest, ``run.json``, written last::

    {"format": "rmsprop-harness-run", "schema": 2, "kind": "conformance", "generation": 7,
     "complete": false, "planned": 182, "finished": 96,
     "files": {"summary.parquet": {"sha256": ..., "rows": 96}, ...}}

**Generations.** Tables are published together: a new generation is written into a fresh
folder ``.generations/<n>/``, then ``run.json`` is replaced (the commit point), then each
top-level file is replaced by a hard link to the new generation's file, and only then are
older generations removed. A reader (`load`) takes the files ``run.json`` names and checks
their checksums, so after a ``kill -9`` at any instant it sees one consistent generation:
the top-level files when they match, else the generation folder, which outlives the publish.

**Safety.** The folder may not be a symlink, nor any file written into it; temporaries are
created with ``O_EXCL`` under random names (`mkstemp`) and renamed over the target, so a
planted symlink is refused, never followed. Reads open with ``O_NOFOLLOW``. A folder that
holds other files, or a baseline, is refused as an output. ``.lock`` (``flock``) lets only
one run write a folder at a time.

**Versions.** ``schema`` changes whenever a table's columns do; `load` refuses another
schema, a missing ``run.json`` (an older harness) and a table without its columns, each with
one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import schema
from reference.errors import InputError

FORMAT = "rmsprop-harness-run"
SCHEMA = schema.VERSION
MANIFEST = "run.json"
LOCK = ".lock"
GENERATIONS = ".generations"
SHARDS = "shards"  # one file per finished task (`harness.base.shards`): kept across runs, for resume
#: Files a run or the report/gate commands write into a run folder (the rest is refused as an output).
OUTPUTS = (*(f"{t}.{ext}" for t in schema.TABLES for ext in ("parquet", "csv")), "env.json", MANIFEST,
           "report.md", "report.html", "gate.md", "gate.json", "overhead.csv", "ab.md", "ab-src", LOCK, GENERATIONS,
           SHARDS)


class RunFolderError(InputError, ValueError):
    """A run folder that cannot be written or read as asked; one line."""


# ---------------------------------------------------------------------- safe files
def check_path(path: str | Path, what: str = "path") -> Path:
    """A user-given path the operating system can take (`RunFolderError` for a NUL byte or an overlong name)."""
    text = os.fspath(path)
    if "\x00" in text:
        raise RunFolderError(f"{what} {text!r}: contains a NUL byte")
    if len(os.fsencode(text)) > 4096 or any(len(os.fsencode(part)) > 255 for part in Path(text).parts):
        raise RunFolderError(f"{what} {text[:60]!r}...: a name too long for the file system")
    return Path(text)


def refuse_symlink(path: Path, what: str = "output") -> None:
    check_path(path)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise RunFolderError(f"{path}: is a symlink; refusing to write an {what} through it")


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` into a fresh temporary beside ``path`` (``O_EXCL``, random name), then rename it
    over ``path``. A symlink at ``path`` or a symlinked folder is refused, never followed."""
    path = Path(path)
    refuse_symlink(path.parent, "output folder")
    refuse_symlink(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, refusing a symlink (``O_NOFOLLOW``)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if stat.S_ISLNK(os.lstat(path).st_mode) if os.path.lexists(path) else False:
            raise RunFolderError(f"{path}: is a symlink; not read") from None
        raise RunFolderError(f"{path}: unreadable ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def read_json(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(read_bytes(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: not a JSON object")
    return data


def read_parquet(path: str | Path) -> pd.DataFrame:
    data = read_bytes(path)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise RunFolderError(f"{path}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------- output
def prepare_output(path: str | Path, *, create: bool = True) -> Path:
    """Check that ``path`` may become (or be rewritten as) a run folder, and create it (with ``create=False``
    only check: bad input found later, a missing suite say, must leave no empty folder behind)."""
    if str(path).strip() == "":
        raise RunFolderError("--out '': give a folder for the results (an empty string would mean the current "
                             "directory)")
    folder = check_path(path, "--out")
    refuse_symlink(folder, "output folder")
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder}: exists and is not a folder")
    if folder.is_dir():
        names = {p.name for p in folder.iterdir()}
        if "baseline.json" in names:
            raise RunFolderError(f"{folder}: is a baseline (baseline.json); refusing to write a run into it "
                                 "(use rmsprop-harness baseline save to replace a baseline)")
        foreign = sorted(n for n in names if n not in OUTPUTS and not n.startswith("."))
        ours = names & set(OUTPUTS)
        if foreign and not ours:
            raise RunFolderError(f"{folder}: exists, holds other files ({', '.join(foreign[:3])}"
                                 f"{' ...' if len(foreign) > 3 else ''}) and is not a run folder; "
                                 "pass a new or empty folder")
    if not create:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"{folder}: cannot be created ({exc.strerror or exc})") from None
    return folder


class Lock:
    """An exclusive ``flock`` on ``<folder>/.lock`` for the life of a run."""

    def __init__(self, folder: Path):
        path = folder / LOCK
        refuse_symlink(path, "lock file")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise RunFolderError(f"{folder}: another run is writing this folder (pid {holder}); wait for it or "
                                 "pass another --out") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = -1


class RunFolder:
    """Writes one run's generations (see the module docstring); ``close`` releases the lock."""

    def __init__(self, path: str | Path, kind: str, planned: int):
        self.path = prepare_output(path)
        self.lock = Lock(self.path)
        self.kind, self.planned = kind, planned
        self.generation = 0
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        for name in OUTPUTS:
            if name in (LOCK, SHARDS):  # the shards decide themselves what a new run keeps
                continue
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()

    def publish(self, tables: dict[str, pd.DataFrame], env: dict[str, Any], finished: int,
                complete: bool = False) -> None:
        """Write a new generation of every table and ``env.json``, commit it in ``run.json``, publish."""
        self.generation += 1
        gens = self.path / GENERATIONS
        refuse_symlink(gens, "generations folder")
        gens.mkdir(exist_ok=True)
        gen = Path(tempfile.mkdtemp(prefix=f"{self.generation:06d}-", dir=gens))
        files: dict[str, dict[str, Any]] = {}
        blobs = {f"{name}.parquet": _parquet(frame) for name, frame in tables.items()}
        blobs["env.json"] = json.dumps(env, indent=2, default=str).encode()
        for name, data in blobs.items():
            (gen / name).write_bytes(data)
            files[name] = {"sha256": sha256(data)}
            if name.endswith(".parquet"):
                files[name]["rows"] = len(tables[name.removesuffix(".parquet")])
        manifest = {"format": FORMAT, "schema": SCHEMA, "kind": self.kind, "generation": self.generation,
                    "directory": f"{GENERATIONS}/{gen.name}", "complete": complete, "planned": self.planned,
                    "finished": finished, "started": self.started,
                    "updated": datetime.now(UTC).isoformat(timespec="seconds"), "files": files}
        write_text(self.path / MANIFEST, json.dumps(manifest, indent=2) + "\n")  # the commit point
        for name in files:
            _publish(gen / name, self.path / name)
        for old in gens.iterdir():
            if old != gen:
                shutil.rmtree(old, ignore_errors=True)
        if complete:  # a finished run keeps only the published files (run.json's checksums cover them)
            shutil.rmtree(gens, ignore_errors=True)

    def close(self) -> None:
        self.lock.release()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _publish(source: Path, target: Path) -> None:
    def link(tmp: Path) -> None:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # a file system without hard links: a copy
            shutil.copyfile(source, tmp)

    write_atomic(target, link)


# --------------------------------------------------------------------------- load
@dataclass
class Loaded:
    """A run folder as read back: its manifest, tables (empty frames when absent) and env."""

    path: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind"))

    def progress(self) -> str:
        return f"{self.manifest.get('finished')} of {self.manifest.get('planned')} tasks finished"


def load(path: str | Path, tables: Iterable[str] | None = None) -> Loaded:
    """Read a run folder through its manifest (see the module docstring); `RunFolderError` with one
    line for a folder that is not a run, another schema version, a table that does not match
    ``run.json`` or lacks a column."""
    folder = check_path(path, "run folder")
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such run folder")
    if not (folder / MANIFEST).exists():
        legacy = [t for t in ("summary.parquet", "throughput.parquet") if (folder / t).exists()]
        if legacy:
            raise RunFolderError(f"{folder}: no {MANIFEST}: written by an older harness (run schema 1); re-run it "
                                 f"to get a folder this version reads (schema {SCHEMA})")
        raise RunFolderError(f"{folder}: not a run folder (no {MANIFEST}; make one with rmsprop-harness run or "
                             "bench)")
    manifest = read_json(folder / MANIFEST)
    if manifest.get("format") != FORMAT:
        raise RunFolderError(f"{folder / MANIFEST}: not an rmsprop-harness run (format {manifest.get('format')!r})")
    if manifest.get("schema") != SCHEMA:
        raise RunFolderError(f"{folder}: run schema {manifest.get('schema')!r}; this harness reads schema {SCHEMA} "
                             "(re-run it with this version)")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise RunFolderError(f"{folder / MANIFEST}: lists no files")
    directory = str(manifest.get("directory", ""))
    if not directory.startswith(f"{GENERATIONS}/") or "/" in directory[len(GENERATIONS) + 1:] or ".." in directory:
        directory = GENERATIONS  # a manifest names its own generation folder and nothing else
    gen = folder / directory
    out = Loaded(folder, manifest)
    wanted = set(tables) if tables is not None else None
    for name, meta in files.items():
        stem = name.removesuffix(".parquet")
        if name != "env.json" and (stem not in schema.TABLES or not name.endswith(".parquet")):
            raise RunFolderError(f"{folder / MANIFEST}: unknown file {name!r}")
        if wanted is not None and name != "env.json" and stem not in wanted:
            continue
        data = _verified(folder, gen, name, str((meta or {}).get("sha256")))
        if name == "env.json":
            try:
                out.env = _clean_env(json.loads(data))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RunFolderError(f"{folder / name}: unreadable ({exc})") from None
            continue
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:
            raise RunFolderError(f"{folder / name}: unreadable ({type(exc).__name__})") from None
        missing = [c for c in schema.COLUMNS[stem] if c not in frame.columns]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise RunFolderError(f"{folder / name}: no {', '.join(missing[:3])} column{plural} (schema {SCHEMA} "
                                 "needs them; written by another harness version?)")
        out.tables[stem] = frame
    return out


#: env.json keys whose value is a table; anything else there is dropped rather than trusted.
_ENV_TABLES = ("suite", "git", "packages", "filters", "fingerprint", "machine", "workers", "parity", "seeds")


def _clean_env(env: Any) -> dict[str, Any]:
    if not isinstance(env, dict):
        return {}
    return {k: v for k, v in env.items() if k not in _ENV_TABLES or isinstance(v, dict)}


def _verified(folder: Path, gen: Path, name: str, digest: str) -> bytes:
    """The bytes of ``name`` whose checksum matches the manifest: the published file, else the
    generation's own copy (a run killed while publishing)."""
    tried = []
    for candidate in (folder / name, gen / name):
        if not candidate.exists() and not candidate.is_symlink():
            continue
        data = read_bytes(candidate)
        if sha256(data) == digest:
            return data
        tried.append(str(candidate))
    if not tried:
        raise RunFolderError(f"{folder / name}: missing (listed in {MANIFEST})")
    raise RunFolderError(f"{folder / name}: does not match its checksum in {MANIFEST} (edited, or another run's "
                         "file); re-run")


__all__ = ["MANIFEST", "SCHEMA", "Loaded", "Lock", "RunFolder", "RunFolderError", "check_path", "load",
           "prepare_output",
           "read_bytes", "read_json", "read_parquet", "refuse_symlink", "write_atomic", "write_text"]
