"""The bench driver: plans a suite, runs one worker per framework at a time, pools the rounds and
derives GB/s and the roofline fraction; the overhead benchmark's driver."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.adapters import ADAPTERS, ONE_THREAD, AdapterInfo
from harness.base import environment, options, schema
from harness.base.measurement import Measurement
from harness.base.runfolder import RunFolder
from harness.bench.memory import available_memory
from harness.bench.roofline import COPY_ADAPTERS, bytes_per_param
from harness.bench.suite import BenchError, BenchSuite, Job, load_bench_suite, plan
from harness.process import channel, spawn
from reference import RMSpropSpec, presets

THROUGHPUT_COLUMNS = schema.THROUGHPUT
POINT_KEY = schema.POINT


def _bench_env(env: dict[str, str], threads: int | None = None) -> dict[str, str]:
    """A framework's worker environment for benchmarks: its own (KERAS_BACKEND, ...) without the
    one-thread pinning of conformance runs: each framework runs with its default threading, or
    with ``threads`` intra-op threads (a gate suite on a shared machine pins 1: a neighbour that
    takes a core then slows a one-thread step a little, a two-thread step a lot)."""
    out = {k: v for k, v in env.items() if k not in ONE_THREAD}
    if threads is not None:
        n = str(threads)
        xla = ("--xla_cpu_multi_thread_eigen=false " if threads == 1 else "") + f"intra_op_parallelism_threads={n}"
        out |= {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n,
                "TF_NUM_INTEROP_THREADS": "1", "XLA_FLAGS": xla, "RMSPROP_HARNESS_BENCH_THREADS": n}
    return out


def _info(name: str) -> AdapterInfo:
    return COPY_ADAPTERS.get(name) or ADAPTERS[name]


@dataclass
class BenchResult:
    throughput: pd.DataFrame
    env: dict[str, Any]
    out: Path | None = None
    overhead: pd.DataFrame | None = None
    devices: list[str] | None = None  # the devices asked for explicitly

    @property
    def unmeasured(self) -> list[str]:
        """Explicitly asked devices on which nothing was measured (``--device gpu`` without a GPU)."""
        tp = self.throughput
        return [d for d in self.devices or [] if d != "auto" and ("device" not in tp or
                                                                 tp[(tp["device"] == d) & (tp["status"] != "skipped")]
                                                                 .empty)]


def _spawn(env_extra: dict[str, str], request: dict, timeout: float,
           on_row: Callable[[dict], None], on_hello: Callable[[dict], None] | None = None) -> tuple[int | None, str]:
    """Run one bench worker; rows go to ``on_row`` as they arrive. (exit code or None on timeout, log tail)."""
    worker = spawn.Worker("harness.bench", [], env_extra, channel.encode("request", request))
    reader = channel.Reader(worker.read_fd)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            message = reader.read(deadline, 0)
            if message.kind == "row":
                on_row(message.body)
            elif message.kind == "hello" and on_hello is not None:
                on_hello(message.body)
    except TimeoutError:
        timed_out = True
        worker.kill()
    except channel.PeerClosed:
        pass
    except channel.ChannelError as exc:
        worker.kill()
        worker.tail.append(f"the worker sent a malformed message ({exc})")
    finally:
        code = worker.close()
    return (None if timed_out else code), worker.last_line()


_NUMBERS = ("n_params", "n_tensors", "median_s", "q1_s", "q3_s", "iqr_s", "samples", "steps_per_sample",
            "first_step_s", "compile_s", "peak_mem_bytes", "mem_delta_bytes", "threads")
_TEXTS = ("bench", "adapter", "variant", "framework", "device", "device_name", "dtype", "layout", "status", "reason",
          "description")


def _clean_row(row: Any) -> dict:
    """A row as the worker sent it, checked: known fields of the right kinds, else an error row (a worker runs
    adapter code; the driver trusts nothing it sends)."""
    if not isinstance(row, dict):
        return {"status": "error", "reason": "the worker sent a row that is not a table"}
    bad = [k for k in _NUMBERS if row.get(k) is not None and (isinstance(row[k], bool) or
                                                              not isinstance(row[k], int | float))]
    bad += [k for k in _TEXTS if row.get(k) is not None and not isinstance(row[k], str)]
    samples = row.get("sample_s")
    if samples is not None and (not isinstance(samples, list) or not all(isinstance(x, int | float) and
                                                                         not isinstance(x, bool) for x in samples)):
        bad.append("sample_s")
    clean = {k: v for k, v in row.items() if k in (*_NUMBERS, *_TEXTS, "sample_s")}
    if bad:
        return {**{k: clean.get(k) for k in ("bench", "adapter", "framework") if isinstance(clean.get(k), str)},
                "status": "error", "reason": f"malformed benchmark row ({', '.join(bad[:3])})"}
    if clean.get("status") not in ("ok", "error", "skipped", "unsupported"):
        clean = {**clean, "status": "error", "reason": f"unknown status {str(clean.get('status'))[:40]!r}"}
    return clean


def _pool(rows: list[dict]) -> list[dict]:
    """One row per point from its rounds (`Measurement.merge`): every round's samples pooled (median
    and quartiles of the pool), ``round_median_s`` each round's own median (the run-to-run noise the
    gate needs); a point that failed in any round keeps that round's status and reason."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in POINT_KEY), []).append(row)
    out = []
    for group in groups.values():
        rounds = len({r.get("round", 0) for r in group})
        bad = [r for r in group if r.get("status") != "ok"]
        if bad:
            first = dict(bad[0])
            if rounds > 1:
                first["reason"] = f"{first.get('reason', '')} (round {first.get('round', 0) + 1} of {rounds})"
            out.append({**first, "rounds": rounds})
            continue
        [pooled] = Measurement.merge(Measurement.from_row(r) for r in group)
        out.append({**group[0], **pooled.row(), "sample_s": list(pooled.sample_s),
                    "peak_mem_bytes": max(r["peak_mem_bytes"] for r in group),
                    "mem_delta_bytes": None if group[0].get("mem_delta_bytes") is None else
                    max(r["mem_delta_bytes"] for r in group),
                    "round_median_s": list(pooled.round_median_s), "rounds": rounds})
    return out


def _finish(rows: list[dict], suite: str, specs: dict[tuple, RMSpropSpec | None]) -> pd.DataFrame:
    """Rounds pooled (`_pool`); derived columns: bytes per parameter from the semantics, GB/s, the copy
    roofline and its fraction."""
    frame = pd.DataFrame(_pool(rows))
    for col in THROUGHPUT_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    frame["suite"] = suite
    frame["bytes_per_param"] = [bytes_per_param(specs.get((r.adapter, r.bench)), r.dtype, str(r.variant))
                                if isinstance(r.dtype, str) else np.nan for r in frame.itertuples()]
    frame["steps_per_s"] = 1.0 / frame["median_s"]
    frame["params_per_s"] = frame["n_params"] / frame["median_s"]
    frame["gb_per_s"] = frame["params_per_s"] * frame["bytes_per_param"] / 1e9
    copies = frame[(frame["framework"] == "copy") & (frame["status"] == "ok")]
    best = copies.groupby(["device", "dtype", "n_params"])["gb_per_s"].max()
    frame["copy_gb_per_s"] = [best.get((r.device, r.dtype, r.n_params), np.nan) for r in frame.itertuples()]
    frame["roofline_fraction"] = frame["gb_per_s"] / frame["copy_gb_per_s"]
    for col in ("n_params", "n_tensors", "samples", "steps_per_sample", "threads", "peak_mem_bytes",
                "mem_delta_bytes", "rounds"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    return frame[THROUGHPUT_COLUMNS]


def bench_environment(name: str, path: Path | None) -> dict[str, Any]:
    return environment.environment(memory_available_bytes=available_memory("cpu"),
                                   suite={"name": name, "path": str(path) if path else None})


@dataclass(frozen=True)
class Prepared:
    """A bench run's checked options and its plan (what ``--dry-run`` prints)."""

    suite: BenchSuite
    jobs: list[Job]
    devices: list[str] | None
    rounds: int
    threads: int | None


def prepare(suite: BenchSuite | str | Path = "perf", *, adapters: list[str] | None = None,
            devices: list[str] | None = None, dtypes: list[str] | None = None, min_time: float | None = None,
            repeats: int | None = None, rounds: int | None = None, threads: int | None = None) -> Prepared:
    """Check the options (`BenchError`/`InputError`: one line), load the suite and plan its jobs."""
    devices, dtypes = options.devices(devices), options.dtypes(dtypes)
    options.number(min_time, "--min-time", 0, 60, open_low=True)
    options.integer(repeats, "--repeats", 3, 1000)
    options.integer(rounds, "--rounds", 1, 100)
    options.integer(threads, "--threads", 1, 1024)
    if not isinstance(suite, BenchSuite):
        suite = load_bench_suite(suite)
    jobs = plan(suite, adapters, devices, dtypes, min_time, repeats)
    return Prepared(suite, jobs, devices, rounds or suite.rounds, threads or suite.threads)


def run_bench(suite: BenchSuite | str | Path = "perf", *, adapters: list[str] | None = None,
              devices: list[str] | None = None, dtypes: list[str] | None = None, min_time: float | None = None,
              repeats: int | None = None, out: str | Path | None = "reports/bench", timeout: float = 900.0,
              progress: Callable[[dict], None] | None = None, rounds: int | None = None,
              threads: int | None = None) -> BenchResult:
    """Run a bench suite; each framework's jobs in its own worker, one worker at a time; the whole
    suite ``rounds`` times (default: the suite's ``rounds``, 1), each round in fresh workers, so
    the samples of a point span the drift of a shared machine and the gate can see it."""
    ready = prepare(suite, adapters=adapters, devices=devices, dtypes=dtypes, min_time=min_time, repeats=repeats,
                    rounds=rounds, threads=threads)
    suite, jobs, devices, rounds, threads = ready.suite, ready.jobs, ready.devices, ready.rounds, ready.threads
    specs: dict[tuple, RMSpropSpec | None] = {}
    folder = RunFolder(out, "bench", len(jobs) * rounds) if out is not None else None
    out_dir = None if folder is None else folder.path
    env = bench_environment(suite.name, suite.path)
    env["rounds"] = rounds
    env["threads"] = threads or "framework default"
    rows: list[dict] = []
    started = time.perf_counter()
    hellos: list[dict] = []
    last = [0.0]
    finished = [0]

    def flush(force: bool = False, complete: bool = False) -> None:
        if folder is None or (not force and time.monotonic() - last[0] < 2.0):
            return
        frame = _finish(rows, suite.name, specs) if rows else pd.DataFrame(columns=THROUGHPUT_COLUMNS)
        environment.finish(env, hellos, started)
        folder.publish({"throughput": frame}, env, finished[0], complete)
        last[0] = time.monotonic()

    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        info = _info(job.adapter)
        groups.setdefault((info.module, tuple(sorted(_bench_env(info.env, threads).items()))), []).append(job)
        if job.adapter not in COPY_ADAPTERS:
            specs[(job.adapter, job.bench)] = presets.get(info.preset)(**job.kwargs)
    complete = False
    flush(force=True)
    try:
        for rnd in range(rounds):
            for (_, env_items), group in groups.items():
                got: list[dict] = []

                def on_row(row: dict, got: list[dict] = got, rnd: int = rnd) -> None:
                    row = _clean_row(row)
                    row["round"] = rnd
                    got.append(row)
                    rows.append(row)
                    flush()
                    if progress is not None:
                        progress(row)

                code, tail = _spawn(dict(env_items), {"jobs": [asdict(j) for j in group]}, timeout, on_row,
                                    hellos.append)
                finished[0] += len(group)
                if code != 0:  # a crashed or killed worker: the jobs it did not report become error rows
                    why = "timed out" if code is None else f"worker exited with {code}"
                    done = {r["adapter"] for r in got}
                    lost = [j for j in group if j.adapter not in done] or [j for j in group if got and
                                                                             j.adapter == got[-1]["adapter"]]
                    for job in lost:
                        rows.append({"bench": job.bench, "adapter": job.adapter, "framework": job.family,
                                     "status": "error", "reason": f"{why}: {tail}", "round": rnd})
                    flush()
        complete = True
    except BaseException:
        spawn.kill_all()
        complete = False
        raise
    finally:
        flush(force=True, complete=complete)
        if folder is not None:
            folder.close()
    return BenchResult(_finish(rows, suite.name, specs) if rows else pd.DataFrame(columns=THROUGHPUT_COLUMNS), env,
                       out_dir, devices=devices)


def run_overhead(sizes: tuple[int, ...] = (1_000_000, 10_000_000), pairs: int = 300, min_time: float = 0.5,
                 out: str | Path | None = None) -> pd.DataFrame:
    """Paired samples of the harness against a bare loop (see `_overhead_worker`); ``ratio`` = harness / bare."""
    options.number(min_time, "--min-time", 0, 60, open_low=True)
    rows: list[dict] = []
    info = ADAPTERS["torch.foreach"]
    code, tail = _spawn(_bench_env(info.env), {"overhead": True, "sizes": list(sizes), "pairs": pairs,
                                               "min_time": min_time}, 900.0, rows.append)
    if code != 0 or not rows:
        raise BenchError(f"the overhead benchmark failed ({'timed out' if code is None else code}): {tail}")
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["harness_s"] / frame["bare_s"]
    if out is not None:
        from harness.base.runfolder import prepare_output, write_text

        write_text(prepare_output(out) / "overhead.csv", frame.to_csv(index=False))
    return frame


def overhead_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per size and kind: the median paired ratio with its quartiles, and the medians of both sides."""
    rows = []
    for (n, kind), g in frame.groupby(["n_params", "kind"]):
        q1, med, q3 = np.percentile(g["ratio"], [25, 50, 75])
        rows.append({"n_params": n, "kind": kind, "ratio": med, "ratio_q1": q1, "ratio_q3": q3, "pairs": len(g),
                     "harness_ms": g["harness_s"].median() * 1e3, "bare_ms": g["bare_s"].median() * 1e3,
                     "figure_ms": g["figure_s"].iloc[0] * 1e3, "bare_figure_ms": g["bare_figure_s"].iloc[0] * 1e3})
    return pd.DataFrame(rows)


__all__ = ["BenchResult", "overhead_summary", "run_bench", "run_overhead"]
