"""The columns of every table the harness writes, and the statuses; one place, versioned.

``VERSION`` is the run folder's schema (``run.json``): it changes whenever a table gains,
loses or renames a column, so a reader never misreads an older folder (`harness.base.runfolder`).
"""

from __future__ import annotations

VERSION = 2

STATE_KINDS = ("nu", "mu", "trace")
#: Between the silent rewrites of the summary's ``warnings`` column.
WARNING_SEPARATOR = " | "

#: A row's status. ``degenerate``: the comparison tested nothing (the reference's parameters never
#: moved to a finite new value); ``error``: the framework raised, crashed, hung or sent a malformed
#: result. Only ``ok``, ``unsupported`` and ``skipped`` let a run pass; any other value read from a
#: folder counts as an error.
STATUSES = ("ok", "fail", "degenerate", "unsupported", "skipped", "error")
PASSING = ("ok", "unsupported", "skipped")

SUMMARY = [
    "suite", "case", "adapter", "framework", "preset", "device", "device_name", "dtype", "stream", "steps",
    "status", "reason", "warnings", "max_abs_err", "max_rel_err", "max_ulp", "median_ulp", "budget_ratio", "tolerance",
    "worst_budget_ratio", "tolerance_used", "nonfinite_mismatch", *(f"{k}_budget_ratio" for k in STATE_KINDS),
    "recorded", "expected", "seconds", "args",
]
STATE_METRICS = ("max_abs_err", "max_rel_err", "budget_ratio", "tolerance", "nonfinite_mismatch")
DIVERGENCE = [
    "suite", "case", "adapter", "framework", "device", "dtype", "step", "max_abs_err", "max_rel_err", "max_ulp",
    "median_ulp", "budget_ratio", "tolerance", "nonfinite_mismatch",
    *(f"{k}_{m}" for k in STATE_KINDS for m in STATE_METRICS),
]
ULP_HISTOGRAM = ["suite", "case", "adapter", "framework", "device", "dtype", "step", "bin", "label", "count"]

#: Parity: one row per pair at its worst gradient scale; ``sweep`` has every scale.
PARITY = ["scenario", "a", "b", "scale", "n_scales", "divergence", "max_abs_diff", "budgets64", "tolerance64",
          "budgets32", "tolerance32", "verdict", "differing"]
SWEEP = ["scenario", "a", "b", "scale", "divergence", "max_abs_diff", "budgets64", "budgets32", "verdict"]
#: Attribution of a pair's divergence (at its worst scale) to the knobs that differ: Shapley values.
ATTRIBUTION = ["scenario", "a", "b", "knob", "label", "source", "value_a", "value_b", "with", "without", "alone",
               "first", "shapley", "share", "interaction", "without_verdict"]
INTERACTIONS = ["scenario", "a", "b", "knob_a", "knob_b", "interaction", "share"]

THROUGHPUT = [
    "suite", "bench", "adapter", "variant", "framework", "device", "device_name", "dtype", "n_params", "n_tensors",
    "layout", "status", "reason", "median_s", "iqr_s", "q1_s", "q3_s", "samples", "steps_per_sample", "first_step_s",
    "compile_s", "steps_per_s", "params_per_s", "bytes_per_param", "gb_per_s", "copy_gb_per_s", "roofline_fraction",
    "peak_mem_bytes", "mem_delta_bytes", "threads", "description", "rounds", "sample_s", "round_median_s",
]

#: The columns that name one row of a table (what the gate matches a baseline's rows by).
#: A benchmark point: what was measured, where, on which layout (the rounds of a point share it).
POINT = ("bench", "adapter", "variant", "device", "dtype", "n_params", "n_tensors", "layout")
KEYS: dict[str, list[str]] = {
    "summary": ["suite", "case", "adapter", "device", "dtype"],
    "divergence": ["suite", "case", "adapter", "device", "dtype", "step"],
    "parity": ["scenario", "a", "b"],
    "throughput": ["suite", *POINT],
}

#: Every table of a run folder, by file stem, with its columns.
COLUMNS: dict[str, list[str]] = {
    "summary": SUMMARY, "divergence": DIVERGENCE, "ulp_histogram": ULP_HISTOGRAM, "parity": PARITY,
    "sweep": SWEEP, "attribution": ATTRIBUTION, "interactions": INTERACTIONS, "throughput": THROUGHPUT,
}
TABLES = tuple(COLUMNS)
CONFORMANCE_TABLES = ("summary", "divergence", "ulp_histogram", "parity", "sweep", "attribution", "interactions")

__all__ = [
    "ATTRIBUTION",
    "COLUMNS",
    "DIVERGENCE",
    "INTERACTIONS",
    "KEYS",
    "PARITY",
    "PASSING",
    "POINT",
    "STATE_KINDS",
    "STATUSES",
    "SUMMARY",
    "SWEEP",
    "TABLES",
    "THROUGHPUT",
    "ULP_HISTOGRAM",
    "VERSION",
]
