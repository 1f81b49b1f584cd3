"""The history over commits: every series' steps, and the plots (PNG files and one self-contained HTML page).

A series is one figure of one task or bench point on one machine fingerprint, in the order its runs were made
(several runs at one commit are several values: the noise a step is judged against). `harness.history.steps`
finds its steps; each is named by the first commit at the new level and the last one before it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from harness.base.runfolder import write_atomic
from harness.history.steps import steps

STEP_COLUMNS = ["fingerprint", "kind", "series", "metric", "first_commit", "previous_commit", "before", "after",
                "ratio", "p_value", "run_index", "runs"]


def find_steps(points: pd.DataFrame) -> pd.DataFrame:
    """One row per step of every series (``Store.frame()`` order: the order the runs were made)."""
    rows = []
    for (fp, kind, series, metric), group in points.groupby(["fingerprint", "kind", "series", "metric"], sort=True):
        values = group["value"].to_numpy()
        commits = group["commit"].tolist()
        for s in steps(values):
            rows.append({"fingerprint": fp, "kind": kind, "series": series, "metric": metric,
                         "first_commit": commits[s.index], "previous_commit": commits[s.index - 1],
                         "before": s.before, "after": s.after, "ratio": s.ratio, "p_value": s.p_value,
                         "run_index": s.index, "runs": len(values)})
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def _figure(group: pd.DataFrame, found: pd.DataFrame, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=100)
    try:
        x = range(len(group))
        ax.plot(list(x), group["value"].tolist(), marker="o", lw=1)
        commits = group["commit"].tolist()
        ax.set_xticks(list(x), [c[:7] for c in commits], rotation=60, fontsize=7)
        for _, step in found.iterrows():
            where = int(step["run_index"])
            ax.axvline(where - 0.5, color="red", ls="--", lw=1)
            ax.annotate(f"x{step['ratio']:.3g} at {str(step['first_commit'])[:7]}", (where - 0.5, ax.get_ylim()[1]),
                        color="red", fontsize=7, va="top")
        ax.set_title(title, fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def render(points: pd.DataFrame, runs: pd.DataFrame, out: Path, limit: int = 24) -> tuple[pd.DataFrame, list[Path]]:
    """Write ``history.html``, ``steps.csv`` and ``png/*.png`` (every series with a step, then up to ``limit``
    others, bench points first) to ``out``; (the steps, the PNGs written)."""
    found = find_steps(points)
    out.mkdir(parents=True, exist_ok=True)
    (out / "png").mkdir(exist_ok=True)
    write_atomic(out / "steps.csv", lambda tmp: found.to_csv(tmp, index=False))
    keys = ["fingerprint", "kind", "series", "metric"]
    stepped = {tuple(r) for r in found[keys].itertuples(index=False)}
    groups = dict(list(points.groupby(keys, sort=True)))
    others = sorted((k for k in groups if k not in stepped), key=lambda k: (k[1] != "bench", k))
    chosen = [k for k in groups if k in stepped] + others[:max(0, limit)]
    pngs, sections = [], []
    for i, key in enumerate(chosen):
        fp, _kind, series, metric = key
        mine = found[(found[keys] == pd.Series(dict(zip(keys, key, strict=True)))).all(axis=1)]
        data = _figure(groups[key], mine, f"{series} · {metric} · {fp[:12]}")
        path = out / "png" / f"{i:03d}.png"
        write_atomic(path, lambda tmp, data=data: tmp.write_bytes(data))
        pngs.append(path)
        sections.append(f"<h3>{html.escape(series)} &middot; {html.escape(metric)}</h3>"
                        f"<img alt='{html.escape(series)}' src='data:image/png;base64,"
                        f"{base64.b64encode(data).decode()}'>")
    summary = (f"<p>{len(runs)} runs at {runs['commit'].nunique()} commits on {runs['fingerprint'].nunique()} "
               f"machine fingerprints; {points.groupby(keys).ngroups} series; {len(found)} steps.</p>")
    page = ("<!doctype html><meta charset='utf-8'><title>rmsprop-harness history</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style>"
            f"<h1>History</h1>{summary}<h2>Steps</h2>"
            f"{found.to_html(index=False, float_format=lambda v: f'{v:.4g}') if len(found) else '<p>none</p>'}"
            f"<h2>Series</h2>{''.join(sections)}<h2>Runs</h2>"
            f"{runs[['commit', 'kind', 'started', 'fingerprint', 'suite', 'source']].to_html(index=False)}")
    write_atomic(out / "history.html", lambda tmp: tmp.write_text(page))
    return found, pngs


__all__ = ["STEP_COLUMNS", "find_steps", "render"]
