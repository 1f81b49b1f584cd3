"""The columns and keys of every table the harness writes, and the statuses; one place, versioned.

The divergence and summary columns are derived from the metric registry (`METRICS`: every
figure measured against the reference, with what it means), so a new metric is one entry here
and a metric a producer emits without an entry fails a test instead of vanishing from a table.

``VERSION`` is the run folder's schema (``run.json``): it changes whenever a table gains,
loses or renames a column, so a reader never misreads an older folder (`harness.base.runfolder`).
"""

from __future__ import annotations

import math

from reference.trajectory import STATE_KINDS

VERSION = 2

#: Between the silent rewrites of the summary's ``warnings`` column.
WARNING_SEPARATOR = " | "

#: A row's status. ``degenerate``: the comparison tested nothing (the reference's parameters never
#: moved to a finite new value); ``error``: the framework raised, crashed, hung or sent a malformed
#: result. Only ``ok``, ``unsupported`` and ``skipped`` let a run pass; any other value read from a
#: folder counts as an error.
STATUSES = ("ok", "fail", "degenerate", "unsupported", "skipped", "error")
PASSING = ("ok", "unsupported", "skipped")

#: The metric registry: figure -> (measured for the optimizer state too, what it is).
METRICS: dict[str, tuple[bool, str]] = {
    "max_abs_err": (True, "max |x - x_ref|"),
    "max_rel_err": (True, "max |x - x_ref| / |x_ref|"),
    "max_ulp": (False, "max |x - x_ref| / ulp(x_ref), ulp in the run dtype"),
    "median_ulp": (False, "median |x - x_ref| / ulp(x_ref): the typical element"),
    "budget_ratio": (True, "max |x - x_ref| / (u B_t): errors in rounding-budget units"),
    "tolerance": (True, "the a-priori tolerance in budget units (reference.budget)"),
    "nonfinite_mismatch": (True, "positions non-finite on exactly one side"),
}
PARAM_METRICS = tuple(METRICS)
STATE_METRICS = tuple(m for m, (state, _) in METRICS.items() if state)
#: Per task, from its last recorded step, and over all of its steps.
SUMMARY_METRICS = ("worst_budget_ratio", "tolerance_used")

CASE_KEY = ["suite", "case", "adapter", "device", "dtype"]
SUMMARY = [
    "suite", "case", "adapter", "framework", "preset", "device", "device_name", "dtype", "stream", "steps",
    "status", "reason", "warnings", *(m for m in PARAM_METRICS if m != "nonfinite_mismatch"), *SUMMARY_METRICS,
    "nonfinite_mismatch", *(f"{k}_budget_ratio" for k in STATE_KINDS), "recorded", "expected", "seconds", "args",
]
DIVERGENCE = [
    "suite", "case", "adapter", "framework", "device", "dtype", "step", *PARAM_METRICS,
    *(f"{k}_{m}" for k in STATE_KINDS for m in STATE_METRICS),
]

#: Upper edges of the ULP histogram bins after the first (exactly 0 ULP); a last bin holds the rest
#: (more than 2^20 ULP, or a position non-finite on one side only).
ULP_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 65536.0, 2.0**20)
ULP_LABELS = ("0", *(f"<={e:g}" if e < 1024 else f"<=2^{int(math.log2(e))}" for e in ULP_EDGES),
              f">2^{int(math.log2(ULP_EDGES[-1]))}")
ULP_HISTOGRAM = ["suite", "case", "adapter", "framework", "device", "dtype", "step", "bin", "label", "count"]

#: Parity: one row per pair at its worst gradient scale; ``sweep`` has every scale.
PARITY = ["scenario", "a", "b", "scale", "n_scales", "divergence", "max_abs_diff", "budgets64", "tolerance64",
          "budgets32", "tolerance32", "verdict", "differing"]
SWEEP = ["scenario", "a", "b", "scale", "divergence", "max_abs_diff", "budgets64", "budgets32", "verdict"]
#: Attribution of a pair's divergence (at its worst scale) to the knobs that differ: Shapley values.
ATTRIBUTION = ["scenario", "a", "b", "knob", "label", "source", "value_a", "value_b", "with", "without", "alone",
               "first", "shapley", "share", "interaction", "without_verdict"]
INTERACTIONS = ["scenario", "a", "b", "knob_a", "knob_b", "interaction", "share"]

#: A benchmark point: what was measured, where, on which layout (the rounds of a point share it).
POINT = ("bench", "adapter", "variant", "device", "dtype", "n_params", "n_tensors", "layout")
#: A point's measurement (`harness.base.measurement.Measurement.row`).
MEASUREMENT = ("median_s", "iqr_s", "q1_s", "q3_s", "samples", "steps_per_sample", "first_step_s", "compile_s")
THROUGHPUT = [
    "suite", "bench", "adapter", "variant", "framework", "device", "device_name", "dtype", "n_params", "n_tensors",
    "layout", "status", "reason", *MEASUREMENT, "steps_per_s", "params_per_s", "bytes_per_param", "gb_per_s",
    "copy_gb_per_s", "roofline_fraction", "peak_mem_bytes", "mem_delta_bytes", "threads", "description", "rounds",
    "sample_s", "round_median_s",
]

#: The paired A/B benchmark (`harness.bench.ab`): one row per point with the ratio current/base of the
#: per-step time, its confidence interval and the verdict; every timed pair of samples.
AB = ["suite", "adapter", "variant", "device", "dtype", "n_params", "layout", "base_median_s", "current_median_s",
      "ratio", "ratio_low", "ratio_high", "blocks", "pairs", "verdict", "reason", "counter", "base_ops",
      "current_ops", "base_bytes", "current_bytes", "work"]
AB_SAMPLES = ["point", "block", "pair", "first", "steps_per_sample", "base_s", "current_s"]

#: Closed-loop training (`harness.training`): each run, each step of it (parameters at the log-spaced
#: steps), each pair of frameworks at the last step and at every logged step (with each framework's
#: one-ulp floor), and the split of a pair's divergence into optimizer, numerics and dynamics terms.
TRAINING_KEY = ["workload", "settings", "dtype"]
TRAINING_RUNS = [*TRAINING_KEY, "trainer", "run", "optimizer", "status", "reason", "args", "init_exact",
                 "final_loss", "final_accuracy", "nonfinite"]
TRAINING = [*TRAINING_KEY, "trainer", "run", "optimizer", "step", "loss", "grad_norm", "eval_loss", "accuracy",
            "params"]
TRAINING_PAIRS = [*TRAINING_KEY, "a", "b", "steps", "loss_a", "loss_b", "loss_gap", "accuracy_a", "accuracy_b",
                  "distance", "relative", "floor", "floor_ratio", "growth", "floor_growth", "verdict"]
TRAINING_DIVERGENCE = [*TRAINING_KEY, "a", "b", "kind", "step", "distance"]
TRAINING_ATTRIBUTION = [*TRAINING_KEY, "a", "b", "term", "category", "loss_delta", "loss_share", "distance_alone",
                        "distance_part", "distance_share", "total_distance", "total_loss_gap"]
TRAINING_KNOBS = [*TRAINING_KEY, "a", "b", "knob", "value_a", "value_b", "alone_loss", "shapley_loss", "loss_share",
                  "shapley_distance", "distance_share"]

#: The semantic timeline (`harness.conformance.timeline`): one implementation's case between two consecutive
#: versions: whether its numerics changed, by how much (final error, worst budget ratio) and which knob.
TIMELINE = ["implementation", "case", "adapter", "device", "dtype", "from_version", "to_version", "change",
            "status_from", "status_to", "err_from", "err_to", "budget_from", "budget_to", "knob", "detail"]

#: Columns that time a task rather than measure it: two runs of one task differ there and nowhere else
#: (resume, merge and the executors compare tables without them).
TIMINGS: dict[str, tuple[str, ...]] = {"summary": ("seconds",)}

#: The columns that name one row of a table (what the gate matches a baseline's rows by).
KEYS: dict[str, list[str]] = {
    "summary": CASE_KEY,
    "divergence": [*CASE_KEY, "step"],
    "ulp_histogram": [*CASE_KEY, "bin"],
    "parity": ["scenario", "a", "b"],
    "sweep": ["scenario", "a", "b", "scale"],
    "attribution": ["scenario", "a", "b", "knob"],
    "interactions": ["scenario", "a", "b", "knob_a", "knob_b"],
    "throughput": ["suite", *POINT],
    "training_runs": [*TRAINING_KEY, "trainer", "run", "optimizer"],
    "training": [*TRAINING_KEY, "trainer", "run", "optimizer", "step"],
    "training_pairs": [*TRAINING_KEY, "a", "b"],
    "training_divergence": [*TRAINING_KEY, "a", "b", "kind", "step"],
    "training_attribution": [*TRAINING_KEY, "a", "b", "term"],
    "training_knobs": [*TRAINING_KEY, "a", "b", "knob"],
    "timeline": ["case", "adapter", "device", "dtype", "from_version", "to_version"],
    "ab": ["suite", "adapter", "variant", "device", "dtype", "n_params", "layout"],
    "ab_samples": ["point", "block", "pair"],
}

#: Every table of a run folder, by file stem, with its columns.
COLUMNS: dict[str, list[str]] = {
    "summary": SUMMARY, "divergence": DIVERGENCE, "ulp_histogram": ULP_HISTOGRAM, "parity": PARITY,
    "sweep": SWEEP, "attribution": ATTRIBUTION, "interactions": INTERACTIONS, "throughput": THROUGHPUT,
    "training_runs": TRAINING_RUNS, "training": TRAINING, "training_pairs": TRAINING_PAIRS,
    "training_divergence": TRAINING_DIVERGENCE, "training_attribution": TRAINING_ATTRIBUTION,
    "training_knobs": TRAINING_KNOBS, "timeline": TIMELINE, "ab": AB, "ab_samples": AB_SAMPLES,
}
TRAINING_TABLES = ("training_runs", "training", "training_pairs", "training_divergence", "training_attribution",
                   "training_knobs")
TABLES = tuple(COLUMNS)
CONFORMANCE_TABLES = ("summary", "divergence", "ulp_histogram", "parity", "sweep", "attribution", "interactions")

__all__ = [
    "ATTRIBUTION",
    "CASE_KEY",
    "COLUMNS",
    "CONFORMANCE_TABLES",
    "DIVERGENCE",
    "INTERACTIONS",
    "KEYS",
    "MEASUREMENT",
    "METRICS",
    "PARAM_METRICS",
    "PARITY",
    "PASSING",
    "POINT",
    "STATE_KINDS",
    "STATE_METRICS",
    "STATUSES",
    "SUMMARY",
    "SUMMARY_METRICS",
    "SWEEP",
    "TABLES",
    "THROUGHPUT",
    "TIMELINE",
    "TIMINGS",
    "TRAINING",
    "TRAINING_ATTRIBUTION",
    "TRAINING_DIVERGENCE",
    "TRAINING_KEY",
    "TRAINING_PAIRS",
    "TRAINING_RUNS",
    "TRAINING_TABLES",
    "ULP_EDGES",
    "ULP_HISTOGRAM",
    "ULP_LABELS",
    "VERSION",
    "WARNING_SEPARATOR",
]
