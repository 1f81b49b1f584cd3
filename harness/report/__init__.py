"""`rmsprop-harness report RUN_DIR`: the run folder's tables as ``report.md``, ``report.html`` and CSV.

* ``report.md``: compact, for a CI job summary or a pull request: the verdict first,
  then the failing cases, then the cross-framework parity table (presets that are
  bitwise identical in a scenario are folded into one row), then the silent rewrites.
* ``report.html``: one self-contained file (PNG figures embedded as data URIs, no
  scripts, no external resources): verdict, failing cases, the status matrix,
  parity heat maps and attribution, divergence vs step per case with the tolerance
  line, ULP histograms, the seed document's contour picture, warnings and the
  environment.
* ``<table>.csv`` next to every ``<table>.parquet``.

`write_report` is what ``rmsprop-harness run`` calls at the end of a run.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import runfolder, schema

MAX_FIGURES = 40  # divergence figures (one per case); a matrix suite has more cases than anyone reads
MAX_ROWS = 50  # failing rows listed in report.md
REPORT_TABLES = schema.TABLES  # a conformance run folder, a bench folder, or both


class ReportError(runfolder.RunFolderError):
    """Not a run folder or unreadable tables; one line."""


@dataclass
class Run:
    """A run folder's tables (missing optional ones are empty frames), its environment and manifest."""

    path: Path
    tables: dict[str, pd.DataFrame]
    env: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=lambda: {"complete": True})

    @property
    def summary(self) -> pd.DataFrame:
        summary = self.tables["summary"]
        return summary if len(summary.columns) else pd.DataFrame(columns=["suite", "case", "adapter", "status"])

    @property
    def throughput(self) -> pd.DataFrame:
        return self.tables["throughput"]

    @property
    def conformance(self) -> bool:
        return bool(len(self.tables["summary"].columns))

    @property
    def suite(self) -> str:
        return str(self.env.get("suite", {}).get("name") or (self.summary["suite"].iloc[0] if len(self.summary)
                                                             else self.path.name))

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def progress(self) -> str:
        return f"{self.manifest.get('finished')} of {self.manifest.get('planned')} tasks finished"

    def statuses(self) -> pd.Series:
        """Each row's status; a value this harness does not write counts as an error."""
        status = self.summary["status"]
        return status.where(status.isin(schema.STATUSES), "error")

    def counts(self) -> dict[str, int]:
        statuses = self.statuses()
        return {s: int((statuses == s).sum()) for s in schema.STATUSES}

    @property
    def passed(self) -> bool:
        """Every row ok, unsupported or skipped, and the run finished."""
        return self.complete and bool(self.statuses().isin(schema.PASSING).all())


def load_run(run_dir: str | Path) -> Run:
    """A run folder through its manifest (`harness.base.runfolder.load`); `ReportError` with one line."""
    try:
        loaded = runfolder.load(run_dir)
    except runfolder.RunFolderError as exc:
        raise ReportError(str(exc)) from None
    tables = {name: _text(loaded.tables.get(name, pd.DataFrame())) for name in REPORT_TABLES}
    return Run(loaded.path, tables, loaded.env, loaded.manifest)


_TEXT = ("suite", "case", "adapter", "framework", "preset", "device", "device_name", "dtype", "stream", "status",
         "reason", "warnings", "args", "scenario", "a", "b", "verdict", "differing", "knob", "label", "source",
         "value_a", "value_b", "without_verdict", "knob_a", "knob_b", "bench", "variant", "layout", "description")


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings (a missing value as empty text): the report never trips on a stray null."""
    frame = frame.copy()
    for column in _TEXT:
        if column in frame:
            frame[column] = frame[column].where(frame[column].notna(), "").astype(str)
    return frame


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write the CSV exports, ``report.md`` and ``report.html`` into ``run_dir``; their paths."""
    run = load_run(run_dir)
    written = {}
    for name, frame in run.tables.items():
        if len(frame.columns):
            written[f"{name}.csv"] = runfolder.write_text(run.path / f"{name}.csv", frame.to_csv(index=False))
    written["report.md"] = runfolder.write_text(run.path / "report.md", markdown(run))
    written["report.html"] = runfolder.write_text(run.path / "report.html", html_report(run))
    return written


# --------------------------------------------------------------------- shared
def _verdict_line(run: Run) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n) or "no rows"
    wall = run.env.get("wall_seconds")
    took = f" in {wall:.0f} s" if isinstance(wall, int | float) else ""
    if not run.complete:
        return f"INCOMPLETE ({run.progress()}: the run was interrupted): {counts}{took}"
    return f"{'PASS' if run.passed else 'FAIL'}: {counts}{took}"


def failing(run: Run) -> pd.DataFrame:
    """One row per failing, erroring or degenerate case x adapter x reason, with where it happened."""
    summary = run.summary.assign(status=run.statuses())
    bad = summary[~summary["status"].isin(schema.PASSING)]
    rows = []
    for (case, adapter, status, reason), g in bad.groupby(["case", "adapter", "status", "reason"], sort=False):
        where = ", ".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in g.itertuples()))
        rows.append({"case": case, "adapter": adapter, "where": where, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=["case", "adapter", "where", "status", "reason"])


def quiet(run: Run) -> pd.DataFrame:
    """One row per adapter, status and reason of the unsupported and skipped rows (a matrix suite repeats
    them over many cases), with the cases and where."""
    summary = run.summary
    rows = []
    shown = summary[summary["status"].isin(["unsupported", "skipped"])]
    for (adapter, status, reason), g in shown.groupby(["adapter", "status", "reason"], sort=False):
        rows.append({"adapter": adapter, "where": ",".join(dict.fromkeys(f"{r.dtype}@{r.device}" for r in
                                                                          g.itertuples())),
                     "cases": list(dict.fromkeys(g["case"])), "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=["adapter", "where", "cases", "status", "reason"])


def status_cells(summary: pd.DataFrame) -> tuple[list[str], dict[tuple[str, str], dict[str, tuple[str, str, str]]]]:
    """The status matrix's columns (dtype@device) and cells: (case, adapter) -> column -> (status, text, reason);
    the text is the status with the share of its tolerance used."""
    columns = list(dict.fromkeys(f"{r.dtype}@{r.device}" for r in summary.itertuples()))
    cells: dict[tuple[str, str], dict[str, tuple[str, str, str]]] = {}
    for r in summary.itertuples():
        text = str(r.status)
        used = getattr(r, "tolerance_used", float("nan"))
        if r.status in ("ok", "fail") and pd.notna(used):
            text += f" {used:.0%}" if used < 10 else f" {used:.3g}x"
        cells.setdefault((r.case, r.adapter), {})[f"{r.dtype}@{r.device}"] = (str(r.status), text, str(r.reason))
    return columns, cells


def warnings(run: Run) -> pd.DataFrame:
    """Each distinct silent rewrite with the adapters and cases it appears in."""
    seen: dict[str, dict[str, list[str]]] = {}
    for r in run.summary.itertuples():
        for text in filter(None, str(r.warnings or "").split(schema.WARNING_SEPARATOR)):
            cases = seen.setdefault(text, {}).setdefault(r.adapter, [])
            if r.case not in cases:
                cases.append(r.case)
    rows = [{"warning": text, "where": "; ".join(f"{a}: {', '.join(map(str, c[:3]))}{' ...' if len(c) > 3 else ''}"
                                                  for a, c in where.items())} for text, where in seen.items()]
    return pd.DataFrame(rows, columns=["warning", "where"])


def folded_pairs(run: Run, scenario: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The scenario's pairs between representatives of bitwise-identical groups, with each pair's
    three largest knob effects; and the groups (representative -> members)."""
    pairs = run.tables["parity"]
    pairs = pairs[pairs["scenario"] == scenario]
    groups: dict[str, list[str]] = {}
    rep: dict[str, str] = {}
    for name in dict.fromkeys([*pairs["a"], *pairs["b"]]):
        twin = next((r for r in groups if _identical(pairs, r, name)), None)
        if twin is None:
            groups[name] = [name]
        else:
            groups[twin].append(name)
        rep[name] = twin or name
    attribution = run.tables["attribution"]
    rows = []
    for r in pairs.itertuples():
        if rep[r.a] != r.a or rep[r.b] != r.b:
            continue
        knobs = attribution[(attribution["scenario"] == scenario) & (attribution["a"] == r.a)
                            & (attribution["b"] == r.b) & (attribution["knob"] != "*")] if len(attribution) else None
        top = "" if knobs is None or knobs.empty else ", ".join(
            f"{k.label} {_pct(k.share)}" for k in knobs.sort_values("share", ascending=False).head(3).itertuples())
        rows.append({"pair": f"{_group(groups, r.a)} vs {_group(groups, r.b)}", "divergence": r.divergence,
                     "worst scale": r.scale, "verdict": r.verdict, "largest shares": top or r.differing})
    return pd.DataFrame(rows, columns=["pair", "divergence", "worst scale", "verdict", "largest shares"]), groups


def _identical(pairs: pd.DataFrame, a: str, b: str) -> bool:
    hit = pairs[((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))]
    return bool(len(hit)) and hit["verdict"].iloc[0] == "identical"


def _group(groups: dict[str, list[str]], name: str) -> str:
    members = groups[name]
    return name if len(members) == 1 else f"{name} (= {', '.join(members[1:])})"


def _pct(share: float) -> str:
    if share != share:
        return "n/a"
    return "0%" if abs(share) < 0.005 else f"{share:.0%}"


def _g(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


# ------------------------------------------------------------------- markdown
def _md_cell(value: Any) -> str:
    text = _g(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;") or " "  # "<" could open an HTML tag; ">" is literal in a cell


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped, one line per row)."""
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def markdown(run: Run) -> str:
    if not run.conformance:
        return _bench_markdown(run)
    out = [f"# RMSprop conformance: suite `{run.suite}`", "", f"**{_verdict_line(run)}**", ""]
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
        for name, info in _scenarios(run).items():
            table, _ = folded_pairs(run, name)
            out += [f"### {name}", "", f"{info}", "", md_table(table), ""]
    warn = warnings(run)
    if not warn.empty:
        out += ["## Silent rewrites", "", md_table(warn), ""]
    csvs = ", ".join(f"`{name}.csv`" for name, frame in run.tables.items() if len(frame.columns))
    out += ["## Environment", "", _env_line(run), "", f"Full report with plots: `report.html`; tables: {csvs}.", ""]
    return "\n".join(out)


def comparison_size(tp: pd.DataFrame) -> int | None:
    """The model-layout size measured by the most adapter variants (the largest of those): one size at
    which every adapter is compared, in the memory-bound regime when the suite reaches it."""
    ok = tp[(tp["status"] == "ok") & (tp["framework"] != "copy") & (tp["layout"] == "model")]
    if ok.empty:
        return None
    counts = ok.groupby("n_params").apply(lambda g: len(g.drop_duplicates(["adapter", "variant"])))
    return int(counts[counts == counts.max()].index.max())


def throughput_table(tp: pd.DataFrame, common_size: bool = False) -> pd.DataFrame:
    """Measured points as a readable table; ``common_size``: only the `comparison_size`, best first."""
    ok = tp[(tp["status"] == "ok") & (tp["framework"] != "copy")]
    if common_size:
        ok = ok[(ok["layout"] == "model") & (ok["n_params"] == comparison_size(tp))].sort_values(
            ["device", "dtype", "roofline_fraction"], ascending=[True, True, False])
    return pd.DataFrame({
        "bench": ok["bench"], "adapter": ok["adapter"], "variant": ok["variant"], "device": ok["device"],
        "dtype": ok["dtype"],
        "params": [f"{n:.0e}" for n in ok["n_params"]], "tensors": ok["n_tensors"],
        "step ms (IQR)": [f"{m * 1e3:.4g} ({i * 1e3:.2g})" for m, i in zip(ok["median_s"], ok["iqr_s"], strict=True)],
        "GB/s": [f"{g:.3g}" for g in ok["gb_per_s"]],
        "of roofline": [f"{f:.0%}" if f == f else "" for f in ok["roofline_fraction"]],
        "compile s": [f"{c:.2g}" for c in ok["compile_s"]],
        "peak RSS MB": [f"{m / 1e6:.0f}" if m == m else "" for m in ok["peak_mem_bytes"].astype(float)],
    })


def roofline_table(tp: pd.DataFrame) -> pd.DataFrame:
    """The memory kernels measured at the comparison size: what the roofline is made of."""
    size = comparison_size(tp)
    rows = tp[(tp["status"] == "ok") & (tp["framework"] == "copy") & (tp["n_params"] == size)]
    return pd.DataFrame({"kernel": rows["adapter"] + " " + rows["variant"], "device": rows["device"],
                         "dtype": rows["dtype"], "elements": [f"{n:.0e}" for n in rows["n_params"]],
                         "bytes per element": rows["bytes_per_param"], "GB/s": [f"{g:.3g}" for g in rows["gb_per_s"]],
                         "threads": rows["threads"], "what": rows["description"]})


def _roofline_line(tp: pd.DataFrame) -> str:
    copies = tp[(tp["status"] == "ok") & (tp["framework"] == "copy")]
    if copies.empty:
        return "no copy bandwidth measured"
    parts = []
    for (device, dtype), g in copies.groupby(["device", "dtype"]):
        top = g[g["n_params"] == g["n_params"].max()]
        best = top.loc[top["gb_per_s"].idxmax()]
        parts.append(f"{device} {dtype}: {best['gb_per_s']:.3g} GB/s at {best['n_params']:.0e} elements "
                     f"({best['adapter']} {best['variant']})")
    return "; ".join(parts)


def _bench_markdown(run: Run) -> str:
    tp = run.throughput
    counts = ", ".join(f"{n} {s}" for s, n in tp["status"].value_counts().items())
    wall = run.env.get("wall_seconds")
    out = [f"# RMSprop throughput: suite `{run.suite}`", "",
           f"**{counts}{f' in {wall:.0f} s' if isinstance(wall, int | float) else ''}; roofline: "
           f"{_roofline_line(tp)}**", "",
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
    out += ["## Environment", "", _env_line(run), "",
            "Every point, the scaling plots and the per-tensor overhead: `report.html`; data: `throughput.csv`.", ""]
    return "\n".join(out)


def _scenarios(run: Run) -> dict[str, str]:
    """Scenario name -> one line saying what it compares."""
    info = run.env.get("parity", {})
    out = {}
    for name in dict.fromkeys(run.tables["parity"]["scenario"]):
        s = info.get(name, {})
        settings = ", ".join(f"{k}={v}" for k, v in s.get("settings", {}).items()) or "each framework's defaults"
        skipped = "; ".join(f"{p}: {why}" for p, why in s.get("skipped", {}).items())
        description = s.get("description", "").rstrip(".")
        out[name] = (f"{description + '. ' if description else ''}Settings: {settings}; {s.get('steps', '?')} steps of "
                     f"{s.get('stream', '?')} gradients (seed {s.get('seed', '?')})."
                     + (f" Not comparable: {skipped}." if skipped else "")).strip()
    return out


def _env_line(run: Run) -> str:
    env = run.env
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    git = env.get("git", {})
    rev = (git.get("revision") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
    return (f"Python {env.get('python', '?')} on {env.get('platform', '?')}, {env.get('cpu', '?')} "
            f"({env.get('cpu_count', '?')} cores); {packages}; git {rev}; started {env.get('started', '?')}.")


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
    from harness.report import plots

    if not run.conformance:
        return _bench_html(run)
    verdict = "PASS" if run.passed else "FAIL" if run.complete else "INCOMPLETE"
    parts = [f"<h1>RMSprop conformance: suite <code>{html.escape(run.suite)}</code></h1>",
             f'<p class="verdict {verdict}">{html.escape(_verdict_line(run))}</p>',
             f'<p class="note">{html.escape(str(run.env.get("suite", {}).get("path", "")))}; '
             "errors are measured against the float64 reference in units of the rounding budget "
             "(see README, How results are judged); a cell's percentage is the share of its tolerance used.</p>"]
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
        for name, info in _scenarios(run).items():
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
    parts += ["<h2>Environment</h2>", _html_table(_env_table(run.env))]
    title = html.escape(f"rmsprop-harness: {run.suite} ({verdict})")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")


def _bench_html(run: Run) -> str:
    from harness.report import plots

    tp = run.throughput
    parts = [f"<h1>RMSprop throughput: suite <code>{html.escape(run.suite)}</code></h1>",
             f'<p class="verdict PASS">{html.escape(_roofline_line(tp))}</p>',
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
