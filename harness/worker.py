"""Run adapter cases in an isolated subprocess, one process per framework/backend.

Keras' backend choice and JAX's x64 switch are process-global, and TF, JAX and
torch fight over threads and memory, so the caller never imports a framework:
`run_in_worker` pickles the cases to a temporary file, starts
``python -m harness.worker IN OUT`` with the adapter's environment, and reads
one result per case back. A case that raises becomes ``{"error": ...}``; a worker
that crashes or times out turns every unfinished case into an error, and the
caller's run goes on.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from .adapters import ADAPTERS, AdapterInfo

Result = dict[str, Any]  # {"params": {...}} | {"error": str} | {"skipped": str}


def run_in_worker(adapter: str | AdapterInfo, cases: list[dict], timeout: float = 600.0) -> list[Result]:
    """Run ``cases`` through ``adapter`` (a registered name or an `AdapterInfo`) in a fresh
    subprocess; one result per case."""
    info = ADAPTERS[adapter] if isinstance(adapter, str) else adapter
    env = {**os.environ, **info.env, "PYTHONUNBUFFERED": "1"}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="rmsprop-worker-") as tmp:
        src, dst = Path(tmp, "in.pkl"), Path(tmp, "out.pkl")
        src.write_bytes(pickle.dumps({"module": info.module, "cases": cases}))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "harness.worker", str(src), str(dst)],
                env=env, capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            return _partial(dst, cases, f"worker timed out after {timeout:g} s")
        if proc.returncode != 0 or not dst.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return _partial(dst, cases, f"worker exited with code {proc.returncode}: {tail[0]}")
        return pickle.loads(dst.read_bytes())


def _partial(dst: Path, cases: list[dict], reason: str) -> list[Result]:
    """Results the worker saved before it died, then errors for the rest."""
    done: list[Result] = []
    partial = dst.with_suffix(".partial")
    if partial.exists():
        try:
            done = pickle.loads(partial.read_bytes())
        except Exception:  # a half-written file: nothing trustworthy to keep
            done = []
    return done + [{"error": reason} for _ in cases[len(done):]]


def _main(src: str, dst: str) -> int:
    request = pickle.loads(Path(src).read_bytes())
    module = importlib.import_module(request["module"])
    reason = module.available()
    results: list[Result] = []
    partial = Path(dst).with_suffix(".partial")
    for case in request["cases"]:
        if reason is not None:
            results.append({"skipped": reason})
            continue
        try:
            results.append({"params": module.run_case(case)})
        except Exception as exc:  # one bad case must not sink the batch
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            results.append({"error": f"{type(exc).__name__}: {exc} ({where})"})
        partial.write_bytes(pickle.dumps(results))
    Path(dst).write_bytes(pickle.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
