"""``rmsprop-harness bench --ab BASE``: the baseline code and the current code timed in the same job.

The baseline is a source tree: ``git archive`` of BASE (a commit, branch or tag of the repository
this harness runs from), extracted into ``OUT/ab-src/<commit>/``, or a folder that holds a
``harness/`` package (an unpacked release, another checkout). The current side is the code running
this command, uncommitted changes included. Each side's workers run `harness.bench.ab_worker` with
that side's tree first on ``PYTHONPATH``, so each times its own adapters.

Per block (``blocks`` of them) both workers start fresh and build every point; then for each point
``pairs`` pairs of adjacent samples are taken, the order alternating, after one discarded pair.
`harness.bench.paired` turns the pairs into a ratio, an interval and a verdict. Nothing measured
elsewhere or earlier is needed, so the gate works on a shared runner whose speed drifts.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import select
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.adapters import ADAPTERS
from harness.base import environment
from harness.bench.paired import FAILING, paired_verdict
from harness.bench.run import _bench_env, prepare
from harness.process import spawn
from reference.errors import InputValueError

WORKER = Path(__file__).with_name("ab_worker.py")
SOURCES = ("harness", "reference")
LABELS = ("base", "current")  # the sides, by their index in run_ab's (base, current)


class ABError(InputValueError):
    """A baseline that cannot be used (no such commit, not a source tree); one line."""


@dataclass(frozen=True)
class Side:
    """One side's code: a source tree (``root``), and the commit it came from when known."""

    label: str
    root: Path
    commit: str | None = None
    dirty: bool | None = None


def current_side() -> Side:
    info = environment.git()
    return Side("current", spawn.ROOT, info.get("revision"), info.get("dirty"))


def _git(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(spawn.ROOT), *argv], capture_output=True, timeout=120, check=False)


def base_side(base: str, out: Path | None) -> Side:
    """BASE as a source tree: a folder holding ``harness/``, or a commit of this repository extracted
    under ``out/ab-src/`` (tar members checked: no links, nothing outside the folder; ``out`` None:
    only resolved, nothing written)."""
    folder = Path(base)
    if folder.is_dir():
        if not (folder / "harness" / "adapters" / "__init__.py").is_file():
            raise ABError(f"--ab {base}: a folder, but not a source tree (no harness/adapters/__init__.py in it)")
        return Side("base", folder.resolve())
    found = _git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if found.returncode != 0:
        where = _git("rev-parse", "--show-toplevel")
        if where.returncode != 0:
            raise ABError(f"--ab {base}: not a folder, and {spawn.ROOT} is not a git checkout to find a commit in")
        shallow = _git("rev-parse", "--is-shallow-repository").stdout.decode().strip() == "true"
        raise ABError(f"--ab {base}: no such commit, branch or tag in {spawn.ROOT}"
                      + (" (a shallow clone: fetch more history, e.g. git fetch --deepen=1)" if shallow else ""))
    commit = found.stdout.decode().strip()
    if out is None:
        return Side("base", spawn.ROOT / f"<git archive {commit[:12]}>", commit)
    tree = out / "ab-src" / commit[:12]
    if not (tree / "harness" / "adapters" / "__init__.py").is_file():
        archive = _git("archive", "--format=tar", commit, *SOURCES)
        if archive.returncode != 0:
            raise ABError(f"--ab {base}: git archive failed: {archive.stderr.decode(errors='replace').strip()[:200]}")
        tree.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")  # refuses absolute paths, links out of the folder, devices
    return Side("base", tree.resolve(), commit)


@dataclass(kw_only=True)
class Point:
    """One measured point, as both sides' workers build it."""

    adapter: str
    variant: str
    device: str
    dtype: str
    layout: str
    shapes: dict[str, list[int]]
    kwargs: dict[str, Any]

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes.values())

    def spec(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "variant": self.variant, "device": self.device, "dtype": self.dtype,
                "shapes": self.shapes, "kwargs": self.kwargs}


def points(suite: str, *, adapters: list[str] | None = None, devices: list[str] | None = None,
           dtypes: list[str] | None = None) -> list[Point]:
    """The suite's points (copy kernels left out: both sides run the same NumPy). Each entry must name
    its variants, so that both sides build the same thing."""
    ready = prepare(suite, adapters=adapters, devices=devices, dtypes=dtypes)
    out = []
    for job in ready.jobs:
        if job.bench == "roofline":
            continue
        if not job.variants:
            raise ABError(f"suite {ready.suite.name}: bench {job.bench!r} names no variants; an A/B suite lists "
                          "them (variants = [...]) so both sides build the same steps")
        job_devices = ["cpu"] if job.devices == "auto" else list(job.devices)
        for device in job_devices:
            for dtype in job.dtypes:
                for label, shapes in job.layouts:
                    out += [Point(adapter=job.adapter, variant=v, device=device, dtype=dtype, layout=label,
                                  shapes=shapes, kwargs=job.kwargs) for v in job.variants]
    return out


class _Pair:
    """Both sides' workers of one block."""

    def __init__(self, sides: tuple[Side, Side], env: dict[str, str]):
        self.workers = [spawn.Worker("", [], env, None, root=s.root, script=str(WORKER), keep_stdin=True)
                        for s in sides]
        self.files = [open(w.read_fd, "rb", buffering=0, closefd=False) for w in self.workers]  # noqa: SIM115

    def pin(self, core: int | None) -> None:
        """Both sides on one core from now on (after the build, which uses every core): a neighbour's load
        there slows both alike, and the pairs cancel it."""
        if core is None:
            return
        for w in self.workers:
            with contextlib.suppress(OSError):  # the whole process: the framework's threads too
                for tid in os.listdir(f"/proc/{w.proc.pid}/task"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(int(tid), {core})
        self.files = [open(w.read_fd, "rb", buffering=0, closefd=False) for w in self.workers]  # noqa: SIM115

    def ask(self, side: int, command: dict, timeout: float) -> dict:
        worker = self.workers[side]
        try:
            worker.command(json.dumps(command).encode() + b"\n")
        except (BrokenPipeError, OSError):
            return {"error": f"the worker exited: {worker.last_line()}"}
        return self.answer(side, timeout)

    def answer(self, side: int, timeout: float) -> dict:
        worker, line = self.workers[side], b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            if not select.select([worker.read_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                worker.kill()
                return {"error": f"no answer in {timeout:.0f} s (killed): {worker.last_line()}"}
            chunk = self.files[side].read(1 << 16)
            if not chunk:
                return {"error": f"the worker exited: {worker.last_line()}"}
            line += chunk
        return json.loads(line)

    def close(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                try:
                    w.command(b'{"exit": true}\n')
                    w.proc.stdin.close()
                except OSError:
                    pass
            w.close(timeout=10)
        for f in self.files:
            f.close()


@dataclass
class ABResult:
    points: pd.DataFrame  # one row per point: the verdict (schema.AB)
    samples: pd.DataFrame  # every timed pair (schema.AB_SAMPLES)


def run_ab(base: Side, current: Side, pts: list[Point], *, blocks: int = 8, pairs: int = 15,
           sample_s: float = 0.01, alpha: float = 0.01, tolerance: float = 0.0, resolution: float = 0.05,
           threads: int | None = 1, timeout: float = 300.0, count: int = 10, pin: bool = False,
           progress: Callable[[str], None] | None = None) -> ABResult:
    """Measure ``pts`` on both sides in ``blocks`` blocks of ``pairs`` pairs; the verdicts (`paired_verdict`).
    In the first block each side also counts ``count`` steps' work (0: not counted; `compare_work`). ``pin``:
    both sides of a block sample on one core (`_Pair.pin`), which measures a one-core step (docs/ab.md)."""
    sides = (base, current)
    families = {ADAPTERS[p.adapter].module for p in pts}
    rows: list[dict] = []
    errors: dict[int, str] = {}  # a point that failed on a side: never a pass
    skipped: dict[int, str] = {}  # a point neither side can run here, for the same reason (a missing framework)
    counts: dict[int, dict[str, dict]] = {}  # point -> side label -> its counted work per step
    for family in sorted(families):
        mine = [i for i, p in enumerate(pts) if ADAPTERS[p.adapter].module == family]
        env = _bench_env(ADAPTERS[pts[mine[0]].adapter].env, threads)
        for block in range(blocks):
            cores = sorted(os.sched_getaffinity(0)) if pin and hasattr(os, "sched_getaffinity") else []
            core = cores[block % len(cores)] if cores else None  # blocks go round the cores
            pair = _Pair(sides if block % 2 == 0 else sides[::-1], env)  # who starts first alternates too
            order = (0, 1) if block % 2 == 0 else (1, 0)  # worker index of (base, current)
            try:
                specs = {"build": [{**pts[i].spec(), "count": count if block == 0 else 0} for i in mine]}
                for w in (0, 1):
                    pair.workers[w].command(json.dumps(specs).encode() + b"\n")
                built = [pair.answer(w, timeout) for w in (0, 1)]
                failed_side = next((w for w in (0, 1) if "error" in built[w]), None)
                if failed_side is not None:  # the worker itself failed (crashed, hung)
                    for i in mine:
                        errors.setdefault(i, f"{LABELS[order.index(failed_side)]}: {built[failed_side]['error']}")
                    break
                live = []
                for j, i in enumerate(mine):
                    got = {LABELS[order.index(w)]: built[w]["points"][j] for w in (0, 1)}
                    problems = {label: g for label, g in got.items() if "stepper" not in g and "per_step_s" not in g}
                    if len(problems) == 2 and all("skip" in g for g in problems.values()) and \
                            got["base"]["skip"] == got["current"]["skip"]:
                        skipped.setdefault(i, got["current"]["skip"])
                    elif problems:
                        label, g = next(iter(problems.items()))
                        errors.setdefault(i, f"{label}: {g.get('error') or g.get('skip')}")
                    else:
                        live.append((j, i))
                        if block == 0:
                            counts[i] = {label: g.get("counts", {}) for label, g in got.items()}
                pair.pin(core)
                for j, i in live:
                    per_step = min(built[0]["points"][j]["per_step_s"], built[1]["points"][j]["per_step_s"])
                    n = max(1, round(sample_s / max(per_step, 1e-9)))
                    for k in range(pairs + 1):
                        t = {}
                        for side in ((0, 1) if k % 2 == 0 else (1, 0)):
                            got = pair.ask(order[side], {"sample": j, "n": n}, timeout)
                            if "error" in got:
                                errors.setdefault(i, f"{LABELS[side]}: {got['error']}")
                                break
                            t[side] = got["t"]
                        if i in errors:
                            break
                        if k:  # the first pair settles both sides after the build; not kept
                            rows.append({"point": i, "block": block, "pair": k - 1, "first": LABELS[k % 2],
                                         "steps_per_sample": n, "base_s": t[0], "current_s": t[1]})
                    if progress is not None:
                        progress(f"{pts[i].adapter} {pts[i].variant} {pts[i].n_params:.0e}: block {block + 1}/{blocks}")
            finally:
                pair.close()
            if all(i in errors or i in skipped for i in mine):
                break
    samples = pd.DataFrame(rows, columns=["point", "block", "pair", "first", "steps_per_sample", "base_s",
                                          "current_s"])
    table = _verdicts(pts, samples, errors, skipped, alpha=alpha, tolerance=tolerance, resolution=resolution)
    work = [compare_work(counts.get(i, {})) for i in range(len(pts))]
    table = pd.concat([table, pd.DataFrame(work, columns=WORK_COLUMNS)], axis=1)
    return ABResult(table, samples)


def _verdicts(pts: list[Point], samples: pd.DataFrame, errors: dict[int, str], skipped: dict[int, str],
              **how: float) -> pd.DataFrame:
    out = []
    for i, p in enumerate(pts):
        mine = samples[samples["point"] == i]
        logs = [np.log(b["current_s"].to_numpy() / b["base_s"].to_numpy()) for _, b in mine.groupby("block")]
        v = paired_verdict(logs, points=len(pts) - len(skipped), **how)
        verdict = "error" if i in errors else "skipped" if i in skipped else v.verdict
        out.append({"adapter": p.adapter, "variant": p.variant, "device": p.device, "dtype": p.dtype,
                    "n_params": p.n_params, "layout": p.layout,
                    "base_median_s": float(mine["base_s"].median()) if len(mine) else math.nan,
                    "current_median_s": float(mine["current_s"].median()) if len(mine) else math.nan,
                    "ratio": v.ratio, "ratio_low": v.low, "ratio_high": v.high, "blocks": v.blocks,
                    "pairs": v.pairs, "verdict": verdict,
                    "reason": errors.get(i) or skipped.get(i) or ("fewer than 2 blocks measured" if verdict == "error"
                                                                  else "")})
    return pd.DataFrame(out)


WORK_COLUMNS = ["counter", "base_ops", "current_ops", "base_bytes", "current_bytes", "work"]


def compare_work(counted: dict[str, dict]) -> dict[str, Any]:
    """Both sides' deterministic per-step work and what changed: ``more`` when the current code runs more
    ops or touches more bytes per step than the base (an extra pass over the parameters), ``less``, ``same``;
    ``uncounted`` (with the reason) where no counter exists for the framework."""
    base, cur = counted.get("base", {}), counted.get("current", {})
    row = {"counter": base.get("counter") or cur.get("counter"), "base_ops": base.get("ops"),
           "current_ops": cur.get("ops"), "base_bytes": base.get("bytes"), "current_bytes": cur.get("bytes")}
    if not base.get("counter") or not cur.get("counter") or base["counter"] != cur["counter"]:
        return {**row, "work": "uncounted" + (f": {cur.get('why') or base.get('why')}" if counted else "")}
    more = [k for k in ("ops", "bytes") if cur[k] > base[k] * (1 + 1e-12)]
    less = [k for k in ("ops", "bytes") if cur[k] < base[k] * (1 - 1e-12)]
    return {**row, "work": "more" if more else "less" if less else "same"}


def failed(result: ABResult) -> bool:
    """A point slower, doing more counted work, or in error, or nothing measured at all (every point
    skipped): never a pass."""
    verdicts = result.points["verdict"]
    more = result.points.get("work", pd.Series(dtype=str)) == "more"
    return bool(verdicts.isin(FAILING).any()) or bool((verdicts == "skipped").all()) or bool(more.any())


__all__ = ["WORK_COLUMNS", "ABError", "ABResult", "Point", "Side", "base_side", "compare_work", "current_side",
           "failed", "points", "run_ab"]
