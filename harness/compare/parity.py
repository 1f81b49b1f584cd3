"""Cross-framework parity: every pair of a scenario's implementations at every gradient scale, its worst
scale's verdict and the attribution of that divergence to the knobs that differ.

The engine (scenarios, trajectories, comparisons, the sweep) is `harness.compare.sweep`; its names are
re-exported here, where users look for them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pandas as pd

from harness.base import schema
from harness.compare.attribution import attribute, differing_knobs, label
from harness.compare.sweep import (
    DEFAULT_SCALES,
    GRADES,
    SAME_MATHEMATICS,
    STANDARD_SHAPES,
    STANDARD_STEPS,
    SWEEP_COLUMNS,
    VERDICTS,
    ParityError,
    Runner,
    Scenario,
    Sweep,
    Trajectory,
    compare,
    grade,
    rank,
)
from reference import RMSpropSpec, implementations

PAIR_COLUMNS = schema.PARITY


@dataclass
class ParityResult:
    pairs: pd.DataFrame
    attribution: pd.DataFrame
    skipped: dict[str, dict[str, str]]  # scenario -> preset -> why it cannot take the settings
    specs: dict[str, dict[str, RMSpropSpec]]  # scenario -> preset -> spec
    sweep: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SWEEP_COLUMNS))
    interactions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=schema.INTERACTIONS))


def parity(scenarios: list[Scenario] | Scenario) -> ParityResult:
    """Pairwise divergence at every scale, the worst scale's verdict and its attribution to knobs,
    for every scenario (pairs in preset order, A before B)."""
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    pairs, sweep, attribution, interactions, skipped, all_specs = [], [], [], [], {}, {}
    for scenario in scenarios:
        specs, skipped[scenario.name] = scenario.specs()
        all_specs[scenario.name] = specs
        runs = Sweep(scenario)
        for (na, a), (nb, b) in itertools.combinations(specs.items(), 2):
            by_scale = runs.compare(a, b)
            for s, m in by_scale.items():
                sweep.append({"scenario": scenario.name, "a": na, "b": nb, "scale": s, **m})
            scale, metrics = runs.worst(by_scale)
            differing = [label(k) for k in differing_knobs(a, b)]
            pairs.append({"scenario": scenario.name, "a": na, "b": nb, "scale": scale, "n_scales": len(by_scale),
                          **metrics, "differing": ", ".join(differing)})
            if metrics["verdict"] not in ("identical", "degenerate") and differing:
                rows, inter = attribute(scenario, runs.runners[scale], na, a, nb, b, metrics)
                attribution.extend(rows)
                interactions.extend(inter)
    return ParityResult(pd.DataFrame(pairs, columns=PAIR_COLUMNS),
                        pd.DataFrame(attribution, columns=schema.ATTRIBUTION), skipped, all_specs,
                        pd.DataFrame(sweep, columns=SWEEP_COLUMNS),
                        pd.DataFrame(interactions, columns=schema.INTERACTIONS))


def __getattr__(name: str):
    if name == "PARITY_PRESETS":  # what the implementation records put in parity by default, as of now
        return implementations.parity_presets()
    raise AttributeError(name)


__all__ = ["DEFAULT_SCALES", "GRADES", "PAIR_COLUMNS", "PARITY_PRESETS",  # noqa: F822 (computed)
           "SAME_MATHEMATICS", "STANDARD_SHAPES", "STANDARD_STEPS", "SWEEP_COLUMNS", "VERDICTS", "ParityError",
           "ParityResult", "Runner", "Scenario", "Sweep", "Trajectory", "compare", "grade", "parity", "rank"]
