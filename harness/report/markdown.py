"""``report.md``: compact, for a CI job summary or a pull request; the verdict first."""

from __future__ import annotations

from harness.report.load import Run
from harness.report.tables import (
    comparison_size,
    env_line,
    failing,
    folded_pairs,
    md_table,
    roofline_line,
    roofline_table,
    scenarios,
    throughput_table,
    verdict_line,
    warnings,
)

MAX_ROWS = 50  # failing rows listed in report.md


def markdown(run: Run) -> str:
    from harness.report import timeline
    from harness.report.training import markdown_section

    if (not run.conformance and not run.throughput.empty) or (not run.conformance and not run.training):
        return _bench_markdown(run)
    if not run.conformance:
        state = "" if run.complete else " (INCOMPLETE: interrupted)"
        return "\n".join([f"# RMSprop closed-loop training{state}", "", *markdown_section(run.tables),
                          "## Environment", "", env_line(run), "", "Plots: `report.html`.", ""])
    out = [f"# RMSprop conformance: suite `{run.suite}`", "", f"**{verdict_line(run)}**", ""]
    bad = failing(run)
    out += ["## Failing cases", ""]
    if bad.empty:
        out += ["None: every row is within its rounding tolerance, unsupported or skipped.", ""]
    else:
        out += [md_table(bad.head(MAX_ROWS)), ""]
        if len(bad) > MAX_ROWS:
            out += [f"... and {len(bad) - MAX_ROWS} more (summary.csv).", ""]
    parity = run.tables["parity"]
    out += ["## Cross-framework parity", ""]
    if parity.empty:
        out += ["This suite has no `[[parity]]` scenarios (try `rmsprop-harness parity`).", ""]
    else:
        out += ["Each framework's float64 reference (the one its conformance rows check it against) on one "
                "gradient stream, same settings, at every gradient scale swept; a pair shows its worst scale. "
                "Divergence = ‖p_a − p_b‖ / distance moved (1 = unrelated). *Shares* are Shapley values: each "
                "differing knob's average contribution over every order of matching them; a pair's shares add up to "
                "100% with what is left once every knob matches.", ""]
        for name, info in scenarios(run).items():
            table, _ = folded_pairs(run, name)
            out += [f"### {name}", "", f"{info}", "", md_table(table), ""]
    warn = warnings(run)
    if not warn.empty:
        out += ["## Silent rewrites", "", md_table(warn), ""]
    out += markdown_section(run.tables)
    out += timeline.markdown_section(run.tables, run.env)
    csvs = ", ".join(f"`{name}.csv`" for name, frame in run.tables.items() if len(frame.columns))
    out += ["## Environment", "", env_line(run), "", f"Full report with plots: `report.html`; tables: {csvs}.", ""]
    return "\n".join(out)



def _bench_markdown(run: Run) -> str:
    tp = run.throughput
    counts = ", ".join(f"{n} {s}" for s, n in tp["status"].value_counts().items())
    wall = run.env.get("wall_seconds")
    out = [f"# RMSprop throughput: suite `{run.suite}`", "",
           f"**{counts}{f' in {wall:.0f} s' if isinstance(wall, int | float) else ''}; roofline: "
           f"{roofline_line(tp)}**", "",
           f"## Every adapter and variant at {comparison_size(tp) or 0:.0e} parameters", "",
           "Optimizer step only, median of blocked samples (IQR in parentheses); GB/s from the bytes the semantics "
           "must move (p, g, v read, p, v written: 20 B per float32 parameter, more with momentum or centered); "
           "*of roofline*: that over the copy bandwidth measured in the same run at the same size.", "",
           md_table(throughput_table(tp, common_size=True)), "",
           "Roofline kernels at the same size (the fastest is the roofline):", "", md_table(roofline_table(tp)), ""]
    bad = tp[tp["status"] != "ok"].drop_duplicates(["adapter", "status", "reason"])
    if len(bad):
        out += ["## Not measured", "", md_table(bad[["adapter", "variant", "device", "status", "reason"]].fillna("")),
                ""]
    out += ["## Environment", "", env_line(run), "",
            "Every point, the scaling plots and the per-tensor overhead: `report.html`; data: `throughput.csv`.", ""]
    return "\n".join(out)
