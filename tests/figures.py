"""Print the worst float64 disagreement of each preset with its framework and with exact arithmetic.

    .venv/bin/python -m tests.figures

Uses the same configuration matrix and gradient stream as the tests.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from reference import UNIT_ROUNDOFF, budget_ratio, rounding_tolerance, run_reference
from reference.exact import run_exact

from .configs import CONFIGS, ILL_CONDITIONED, STEPS, per_step, run_frameworks, schedule
from .test_frameworks import GRADS, PARAMS


def main() -> None:
    rows: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, np.inf])
    u = UNIT_ROUNDOFF["float64"]
    results = run_frameworks(CONFIGS, PARAMS, GRADS)
    for cfg in CONFIGS:
        res = results[cfg.id]
        row = rows[cfg.preset]
        if "params" not in res:
            print(f"{cfg.id}: {res}")
            continue
        spec, lrs = cfg.spec(), (schedule() if cfg.schedule else None)
        ref = run_reference(spec, PARAMS, per_step(GRADS), lrs)
        row[0] += 1
        tol = rounding_tolerance(spec, STEPS, implementations=2)
        row[4] = min(row[4], tol)
        for n in PARAMS:
            got = res["params"][n]
            row[1] = max(row[1], float(budget_ratio(got, ref[n], PARAMS[n], u).max()))
            rel = np.abs(got - ref[n]) / np.maximum(np.abs(ref[n]), 1e-300)
            row[2] = max(row[2], float(rel.max()))
        if cfg.id not in ILL_CONDITIONED:
            exact = run_exact(spec, PARAMS, per_step(GRADS), lrs)
            row[3] = max(row[3], max(float(budget_ratio(ref[n], exact[n], PARAMS[n], u).max())
                                     for n in PARAMS))
    print("| preset | configs | worst framework-vs-reference (budgets) | worst elementwise relative "
          "error | worst reference-vs-exact (budgets) | smallest tolerance (budgets) |")
    print("|---|---|---|---|---|---|")
    for preset, (n, ratio, rel, exact, tol) in rows.items():
        print(f"| {preset} | {n} | {ratio:.1f} | {rel:.1e} | {exact:.1f} | {tol:.0f} |")


if __name__ == "__main__":
    main()
