"""``report.html``: one self-contained file, PNG figures as data URIs, no scripts, no external resources."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import pandas as pd

from harness.report.load import Run
from harness.report.tables import (
    comparison_size,
    failing,
    folded_pairs,
    roofline_line,
    roofline_table,
    scenarios,
    status_cells,
    throughput_table,
    verdict_line,
    warnings,
)

MAX_FIGURES = 40  # divergence figures (one per case); a matrix suite has more cases than anyone reads


# ----------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;
color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.verdict{font-size:1.3em;padding:.5em 1em;border-radius:6px;display:inline-block}
.PASS{background:#e3f6e3;color:#135c13}.FAIL{background:#fde2e2;color:#8b1111}
.ok{background:#e3f6e3}.fail,.error,.degenerate{background:#fde2e2;font-weight:bold}.unsupported{color:#888}
.skipped{background:#fff6d6}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.9em}
"""


def _img(data: bytes | None, alt: str, caption: str = "") -> str:
    if data is None:
        return ""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(alt)}" src="{src}">{cap}</figure>'


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, escape=True, na_rep="", float_format=lambda x: f"{x:.3g}")


def status_matrix(summary: pd.DataFrame) -> str:
    """Case x adapter rows, dtype@device columns; each cell the status and the tolerance used."""
    columns, cells = status_cells(summary)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("case", "adapter", *columns))
    body = []
    for (case, adapter), row in cells.items():
        tds = []
        for c in columns:
            status, text, reason = row.get(c, ("", "", ""))
            tds.append(f'<td class="{html.escape(status)}" title="{html.escape(reason)}">{html.escape(text)}</td>')
        body.append(f"<tr><td>{html.escape(str(case))}</td><td>{html.escape(str(adapter))}</td>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _env_table(env: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for key, value in env.items():
        if key in ("packages", "git", "suite"):
            rows += [(f"{key}.{k}", v) for k, v in value.items()]
        elif key == "workers":
            rows += [(f"worker {k}", json.dumps(v, sort_keys=True)) for k, v in value.items()]
        elif key in ("seeds", "parity"):
            rows.append((key, json.dumps(value, sort_keys=True)))
        elif key == "command":
            rows.append((key, " ".join(map(str, value))))
        else:
            rows.append((key, value))
    return pd.DataFrame(rows, columns=["item", "value"])


def html_report(run: Run) -> str:
    from harness.compare.seed_example import quadratic_paths
    from harness.report import plots, timeline
    from harness.report.training import html_section

    if not run.conformance and (not run.throughput.empty or not run.training):
        return _bench_html(run)
    if not run.conformance:
        state = "" if run.complete else " (INCOMPLETE: interrupted)"
        parts = [f"<h1>RMSprop closed-loop training{html.escape(state)}</h1>",
                 *html_section(run.tables, _html_table, _img), "<h2>Environment</h2>", _html_table(_env_table(run.env))]
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>rmsprop-harness: training'
                f'</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style>'
                f"</head><body>{''.join(parts)}</body></html>\n")
    verdict = "PASS" if run.passed else "FAIL" if run.complete else "INCOMPLETE"
    parts = [f"<h1>RMSprop conformance: suite <code>{html.escape(run.suite)}</code></h1>",
             f'<p class="verdict {verdict}">{html.escape(verdict_line(run))}</p>',
             f'<p class="note">{html.escape(str(run.env.get("suite", {}).get("path", "")))}; '
             "errors are measured against the float64 reference in units of the rounding budget "
             "(see docs/reference.md, How results are judged); "
             "a cell's percentage is the share of its tolerance used.</p>"]
    bad = failing(run)
    parts += ["<h2>Failing cases</h2>",
              "<p>None: every row is within its rounding tolerance, unsupported or skipped.</p>" if bad.empty
              else _html_table(bad)]

    parity, attribution = run.tables["parity"], run.tables["attribution"]
    if not parity.empty:
        parts += ["<h2>Cross-framework parity</h2>",
                  "<p>The same settings through every framework's own semantics: each framework's float64 "
                  "reference (the one its conformance rows check it against) on one gradient stream, at every "
                  "gradient scale swept (a pair shows its worst). "
                  "<b>divergence</b> = ‖p_a − p_b‖ / distance moved, max over steps; "
                  "<b>verdict</b>: identical (bitwise), rounding (float64 rounding level: the same "
                  "mathematics), below float32 (a float32 run cannot tell them apart), then slight (&lt; 0.1% of "
                  "the distance moved), moderate (&lt; 10%), large (&lt; 100%), unrelated; degenerate when nothing "
                  "moves. <b>Attribution</b>: Shapley values over the differing knobs (2<sup>k</sup> reference runs): "
                  "<i>share</i> is a knob's average contribution over every order of matching them, and a pair's "
                  "shares add up to 100% with its last row (what is left once all of them match, rounding level "
                  "when the list is complete); <i>alone</i> is the knob's own effect, <i>interaction</i> what it "
                  "adds or loses in combination.</p>"]
        for name, info in scenarios(run).items():
            table, _ = folded_pairs(run, name)
            parts += [f"<h3>{html.escape(name)}</h3>", f"<p>{html.escape(info)}</p>",
                      _img(plots.parity_heatmap(parity, name), f"parity heat map {name}",
                           "log10 pairwise divergence; = bitwise identical, ~ float64 rounding level"),
                      _html_table(table),
                      _img(plots.attribution_heatmap(attribution, name), f"attribution heat map {name}",
                           "each knob's effect alone (colour) and its Shapley share of the pair's divergence")]
            rows = attribution[attribution["scenario"] == name] if len(attribution) else attribution
            if len(rows):
                shown = rows.drop(columns=["scenario", "knob"]).rename(columns={"label": "knob"})
                parts += ["<details><summary>attribution table</summary>", _html_table(shown), "</details>"]

    div = run.tables["divergence"]
    if not div.empty:
        cases = list(dict.fromkeys(div["case"]))
        parts += ["<h2>Divergence vs step</h2>",
                  "<p>Each adapter's divergence from the float64 reference (max over elements, in rounding "
                  "budgets) divided by its own tolerance, so the dashed line at 1 is every adapter's "
                  "tolerance. An exact match is drawn at the floor.</p>"]
        parts += [_img(plots.divergence_figure(div, c), f"divergence vs step: {c}") for c in cases[:MAX_FIGURES]]
        if len(cases) > MAX_FIGURES:
            parts.append(f"<p class='note'>... and {len(cases) - MAX_FIGURES} more cases (divergence.csv).</p>")
    hist = run.tables["ulp_histogram"]
    if not hist.empty:
        parts += ["<h2>ULP histograms</h2>",
                  "<p>|x − x_ref| / ulp(x_ref) of every parameter element at the last step, ulp in the run "
                  "dtype, all cases together. ≤0.5 is correctly rounded.</p>",
                  _img(plots.ulp_figure(hist), "ULP histograms")]
    paths = quadratic_paths()
    rms = {k: v for k, v in paths.items() if not k.startswith("SGD")}
    spread = max(float(abs(v - rms["torch"]).max()) for v in rms.values() if v is not rms["torch"]) if len(rms) > 1 \
        else 0.0
    parts += ["<h2>The seed document's picture</h2>",
              "<p>An ill-conditioned quadratic, steep in y and flat in x: SGD (lr near its stability limit along "
              "y) zig-zags across the valley and crawls along it; RMSprop divides each coordinate by its own "
              "RMS and heads for the minimum. Each framework runs its own semantics with lr 0.1 and decay 0.9 "
              f"copied in. TF1's accumulator starting at 1 makes it crawl at first; the others coincide at this "
              f"scale (the largest gap between two of them is {spread:.2g}).</p>",
              _img(plots.seed_contour(paths), "SGD and RMSprop trajectories over contour lines")]
    parts += ["<h2>Status of every row</h2>", "<details open><summary>case x adapter x dtype@device (hover a "
              "cell for its reason)</summary>", status_matrix(run.summary), "</details>"]
    warn = warnings(run)
    if not warn.empty:
        parts += ["<h2>Silent rewrites</h2>", _html_table(warn)]
    parts += html_section(run.tables, _html_table, _img)
    parts += timeline.html_section(run.tables, run.env, _html_table, _img)
    parts += ["<h2>Environment</h2>", _html_table(_env_table(run.env))]
    title = html.escape(f"rmsprop-harness: {run.suite} ({verdict})")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")


def _bench_html(run: Run) -> str:
    from harness.report import plots

    tp = run.throughput
    parts = [f"<h1>RMSprop throughput: suite <code>{html.escape(run.suite)}</code></h1>",
             f'<p class="verdict PASS">{html.escape(roofline_line(tp))}</p>',
             "<p>The optimizer step alone, each framework in its best practice (labelled variants). First step "
             "timed apart (tracing and compilation: <i>compile s</i> = first step - median); warm-up until two "
             "blocks agree within 10%; then blocks of steps, each ending in one device synchronisation, until at "
             "least the minimum time and number of samples; median and interquartile range per step. Effective GB/s "
             "counts the bytes the semantics must move; the roofline is the fastest plain copy measured in the same "
             "run at the same size (read + write). Peak memory: the worker's RSS on the CPU (framework runtime "
             "included), the allocator's peak on a GPU.</p>",
             f"<h2>Every adapter and variant at {comparison_size(tp) or 0:.0e} parameters</h2>",
             _html_table(throughput_table(tp, common_size=True)),
             "<p>Roofline kernels at the same size (the fastest is the roofline):</p>", _html_table(roofline_table(tp)),
             "<h2>Scaling with size</h2>",
             _img(plots.throughput_size_figure(tp), "throughput vs size",
                  "left: step time (linear in size past the caches); right: effective GB/s and the copy roofline"),
             "<h2>Per-tensor overhead</h2>",
             _img(plots.throughput_tensors_figure(tp), "step time vs number of tensors") or
             "<p>No tensor-count experiment in this run.</p>",
             "<h2>Every point</h2>", _html_table(throughput_table(tp))]
    bad = tp[tp["status"] != "ok"].drop_duplicates(["adapter", "status", "reason"])
    if len(bad):
        parts += ["<h2>Not measured</h2>", _html_table(bad[["adapter", "variant", "device", "status", "reason"]])]
    parts += ["<h2>Environment</h2>", _html_table(_env_table(run.env))]
    title = html.escape(f"rmsprop-harness: {run.suite} throughput")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")
