"""Synthetic gate tables shared by the gate's tests: conformance summaries and divergence figures,
throughput points with seeded samples, machines that match and differ."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.gate.baseline import Tables

FINGERPRINT = {"digest": "a" * 64, "cpu": {"vendor": "AuthenticAMD", "family": "25", "model": "1",
                                          "flags": ["avx", "avx2", "fma"]}, "numpy": {"simd": ["X86_V3"]},
               "env": {}, "frameworks": {}, "gpus": []}
ENV = {"cpu": "Test CPU", "cpu_count": 2, "python": "3.11.0", "packages": {"torch": "2.13.0"},
       "suite": {"name": "s"}, "git": {"revision": "abc", "dirty": False}, "fingerprint": FINGERPRINT}
OTHER_MACHINE = {**ENV, "cpu": "Other CPU", "fingerprint": {
    **FINGERPRINT, "digest": "b" * 64, "cpu": {"vendor": "GenuineIntel", "family": "6", "model": "167",
                                               "flags": ["avx", "avx2", "fma", "avx512f"]}}}



def summary(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(case, dtype, status) rows of adapter "a" on the cpu."""
    return pd.DataFrame([{"suite": "s", "case": c, "adapter": "a", "device": "cpu", "dtype": d, "status": st,
                          "reason": f"why {st}"} for c, d, st in rows])


def divergence(values: dict[tuple[str, str], list[float]], steps=(1, 10, 100), figure="max_ulp") -> pd.DataFrame:
    rows = []
    for (case, dtype), figs in values.items():
        for step, value in zip(steps, figs, strict=True):
            row = {"suite": "s", "case": case, "adapter": "a", "device": "cpu", "dtype": dtype, "step": step,
                   "max_ulp": 1.0, "median_ulp": 0.5, "budget_ratio": 3.0, "nu_budget_ratio": 2.0,
                   "mu_budget_ratio": np.nan, "trace_budget_ratio": np.nan, "tolerance": 40.0,
                   "nu_tolerance": 40.0, "mu_tolerance": np.nan, "trace_tolerance": np.nan}
            row[figure] = value
            rows.append(row)
    return pd.DataFrame(rows)


def conformance(statuses, values, figure="max_ulp", steps=(1, 10, 100), env=ENV) -> Tables:
    return Tables("x", summary=summary(statuses), divergence=divergence(values, steps, figure),
                  envs={"conformance": env})


OK2 = [("c1", "float32", "ok"), ("c2", "float64", "ok")]
BASE = {("c1", "float32"): [1.0, 1.0, 1.0], ("c2", "float64"): [2.0, 4.0, 8.0]}


def bench_table(samples: list[float], *, status="ok", framework="fake", copy_samples=None) -> pd.DataFrame:
    key = {"suite": "perf", "bench": "size", "device": "cpu", "dtype": "float32", "n_params": 1000, "n_tensors": 1,
           "layout": "flat", "reason": "", "device_name": "Test CPU"}
    rows = [{**key, "adapter": "fake", "variant": "numpy", "framework": framework, "status": status,
             "median_s": float(np.median(samples)), "sample_s": list(samples)}]
    if copy_samples is not None:
        rows.append({**key, "adapter": "copy.numpy", "variant": "copy", "framework": "copy", "status": "ok",
                     "median_s": float(np.median(copy_samples)), "sample_s": list(copy_samples)})
    return pd.DataFrame(rows)


def bench(samples, env=ENV, **kw) -> Tables:
    return Tables("b", throughput=bench_table(samples, **kw), envs={"throughput": env})


def draws(median: float, n: int = 15, spread: float = 0.05) -> list[float]:
    """Samples with 5% multiplicative noise, seeded by the arguments (the same in any test order)."""
    rng = np.random.default_rng(int(median * 1e7) + n)
    return list(median * np.exp(rng.normal(0, spread, n)))



def with_rounds(tables: Tables, medians: list[float]) -> Tables:
    tables.throughput["round_median_s"] = [medians]
    return tables
