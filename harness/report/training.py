"""The closed-loop sections of report.md and report.html, and their figures: loss curves per framework,
parameter divergence vs step (log scale) against the rounding floor, and the attribution table."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.plots import _colors, png

_INTRO = ("Each framework trains the model natively (its own layers, loss and optimizer) from bit-identical "
          "initial weights on the same batches. *distance*: ‖θ_a − θ_b‖ over every parameter at the last step; "
          "*floor*: the same distance for rounding-only differences (each framework against itself started one ulp "
          "away and against the float64 reference of its own semantics), summed over the pair; *growth*: "
          "(ln d_T − ln d_t0)/(T − t0) per step, > 0 when the dynamics amplify a difference. The attribution "
          "splits the base framework's gap to each other one along a chain of runs; the parts add up to the total "
          "(a negative part cancels others). The optimizer-semantics part is split further by knob: exact Shapley "
          "values over closed-loop runs with every subset of the differing knobs set to the other framework's.")


def _fmt(x: float, spec: str = ".3g") -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(float(x), spec)


def groups(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    runs = tables.get("training_runs", pd.DataFrame())
    if runs is None or runs.empty:
        return []
    return list(dict.fromkeys(zip(runs["workload"], runs["settings"], runs["dtype"], strict=True)))


def _select(frame: pd.DataFrame, key: tuple[str, str, str]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame(columns=getattr(frame, "columns", []))
    w, s, d = key
    return frame[(frame["workload"] == w) & (frame["settings"] == s) & (frame["dtype"] == d)]


def pairs_table(tables: dict[str, pd.DataFrame], key: tuple[str, str, str]) -> pd.DataFrame:
    p = _select(tables["training_pairs"], key)
    return pd.DataFrame({
        "a": p["a"], "b": p["b"], "loss a": [_fmt(x, ".6g") for x in p["loss_a"]],
        "loss b": [_fmt(x, ".6g") for x in p["loss_b"]], "distance": [_fmt(x) for x in p["distance"]],
        "relative": [_fmt(x) for x in p["relative"]], "x floor": [_fmt(x) for x in p["floor_ratio"]],
        "growth /step": [_fmt(x, "+.3g") for x in p["growth"]], "verdict": p["verdict"]})


def attribution_table(tables: dict[str, pd.DataFrame], key: tuple[str, str, str]) -> pd.DataFrame:
    a = _select(tables["training_attribution"], key)
    return pd.DataFrame({
        "pair": a["a"] + " vs " + a["b"], "term": a["term"], "category": a["category"],
        "loss Δ": [_fmt(x, ".3g") for x in a["loss_delta"]],
        "share of loss gap": [_fmt(100 * x, ".1f") + "%" if not math.isnan(x) else "" for x in a["loss_share"]],
        "distance alone": [_fmt(x) for x in a["distance_alone"]],
        "share of distance": [_fmt(100 * x, ".1f") + "%" if not math.isnan(x) else "" for x in a["distance_share"]]})


def knobs_table(tables: dict[str, pd.DataFrame], key: tuple[str, str, str]) -> pd.DataFrame:
    k = _select(tables.get("training_knobs", pd.DataFrame()), key)
    return pd.DataFrame({
        "pair": k["a"] + " vs " + k["b"], "knob": k["knob"], "values": k["value_a"] + " -> " + k["value_b"],
        "loss Δ alone": [_fmt(x) for x in k["alone_loss"]], "Shapley loss Δ": [_fmt(x) for x in k["shapley_loss"]],
        "share of loss gap": [_pct(x) for x in k["loss_share"]],
        "share of distance": [_pct(x) for x in k["distance_share"]]})


def _pct(x: float) -> str:
    return "" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def headlines(tables: dict[str, pd.DataFrame], key: tuple[str, str, str]) -> list[str]:
    """One sentence per attributed pair: where each ends, and what the gap is made of."""
    pairs = _select(tables["training_pairs"], key)
    attr = _select(tables["training_attribution"], key)
    knobs = _select(tables.get("training_knobs", pd.DataFrame()), key)
    out = []
    for a, b in dict.fromkeys(zip(attr["a"], attr["b"], strict=True)):
        p = pairs[((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))]
        if p.empty:
            continue
        p = p.iloc[0]
        loss = {p["a"]: p["loss_a"], p["b"]: p["loss_b"]}
        terms = attr[(attr["a"] == a) & (attr["b"] == b)]
        share = terms.groupby("category")["loss_share"].sum()
        text = (f"{b} ends at loss {loss[b]:.6g} vs {a} {loss[a]:.6g} after {int(p['steps'])} steps "
                f"(‖Δθ‖ {p['distance']:.3g}, {p['verdict']}; growth {p['growth']:+.3g}/step)")
        gap = loss[b] - loss[a]
        if abs(gap) <= 64 * float(np.finfo(key[2]).eps) * max(abs(loss[a]), abs(loss[b])):
            out.append(text + f". The loss gap ({gap:.2g}) is within 64 ulps of the loss: its shares are not "
                              "meaningful (the distance's shares are in the table).")
            continue
        if share.abs().max() > 10:  # parts far larger than the gap cancel: absolute changes read better
            delta = terms.groupby("category")["loss_delta"].sum()
            text += (f". The loss gap {gap:.3g} is what is left of optimizer semantics "
                     f"{delta.get('optimizer', math.nan):+.3g} in open loop, the dynamics "
                     f"{delta.get('dynamics', math.nan):+.3g} and rounding {delta.get('numerics', math.nan):+.3g}")
        else:
            text += (f". Of the loss gap: optimizer semantics {_pct(share.get('optimizer', math.nan))} in open loop, "
                     f"amplified or damped by the dynamics {_pct(share.get('dynamics', math.nan))}, rounding "
                     f"(forward/backward and the optimizers') {_pct(share.get('numerics', math.nan))}")
        mine = knobs[(knobs["a"] == a) & (knobs["b"] == b)].sort_values("loss_share", key=abs, ascending=False)
        if len(mine):
            text += "; by knob: " + ", ".join(f"{r.knob} {_pct(r.loss_share)}" for r in mine.head(3).itertuples())
        out.append(text + ".")
    return out


def runs_table(tables: dict[str, pd.DataFrame], key: tuple[str, str, str]) -> pd.DataFrame:
    r = _select(tables["training_runs"], key)
    r = r[r["run"] == "native"]
    return pd.DataFrame({"framework": r["trainer"], "status": r["status"], "args": r["args"],
                         "initial weights": ["bit-identical" if v is True else "DIFFER" if v is False else ""
                                             for v in r["init_exact"]],
                         "final loss": [_fmt(x, ".6g") for x in r["final_loss"]],
                         "accuracy": [_fmt(x, ".4f") for x in r["final_accuracy"]], "reason": r["reason"].fillna("")})


def heading(key: tuple[str, str, str]) -> str:
    w, s, d = key
    return f"{w}, {s} settings, {d}"


def markdown_section(tables: dict[str, pd.DataFrame]) -> list[str]:
    from harness.report.tables import md_table

    keys = groups(tables)
    if not keys:
        return []
    out = ["## Closed-loop training", "", _INTRO, ""]
    for key in keys:
        out += [f"### {heading(key)}", "", md_table(runs_table(tables, key)), ""]
        pairs = pairs_table(tables, key)
        if len(pairs):
            out += [md_table(pairs), ""]
        out += [f"- {line}" for line in headlines(tables, key)] + [""]
        attr = attribution_table(tables, key)
        if len(attr):
            out += [md_table(attr), ""]
        knobs = knobs_table(tables, key)
        if len(knobs):
            out += [md_table(knobs), ""]
    return out


def html_section(tables: dict[str, pd.DataFrame], table: callable, img: callable) -> list[str]:
    keys = groups(tables)
    if not keys:
        return []
    out = ["<h2>Closed-loop training</h2>", f"<p>{html.escape(_INTRO)}</p>"]
    for key in keys:
        out += [f"<h3>{html.escape(heading(key))}</h3>", table(runs_table(tables, key)),
                img(loss_figure(tables["training"], key), f"loss curves {heading(key)}",
                    "batch loss per step of each framework's native run (log scale)"),
                img(divergence_figure(tables["training_divergence"], key), f"divergence {heading(key)}",
                    "‖θ_a − θ_b‖ per logged step (log scale); dashed: each framework's rounding floor")]
        if len(_select(tables["training_pairs"], key)):
            out.append(table(pairs_table(tables, key)))
        lines = headlines(tables, key)
        if lines:
            out.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
        if len(_select(tables["training_attribution"], key)):
            out.append(table(attribution_table(tables, key)))
        knobs = knobs_table(tables, key)
        if len(knobs):
            out.append(table(knobs))
    return out


def loss_figure(steps: pd.DataFrame, key: tuple[str, str, str]) -> bytes | None:
    rows = _select(steps, key)
    rows = rows[(rows["run"] == "native") & (rows["step"] > 0)]
    if rows.empty:
        return None
    names = list(dict.fromkeys(rows["trainer"]))
    colors = _colors(names)
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        r = rows[rows["trainer"] == name]
        ax.plot(r["step"], r["loss"], label=name, color=colors[name], lw=1.2, ls=("-", "--", ":", "-.")[i % 4])
    if (rows["loss"] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("batch loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return png(fig)


def divergence_figure(curves: pd.DataFrame, key: tuple[str, str, str], base: str | None = None) -> bytes | None:
    rows = _select(curves, key)
    rows = rows[rows["step"] > 0]
    if rows.empty:
        return None
    pairs = rows[rows["kind"] == "pair"]
    base = base or (str(pairs["a"].iloc[0]) if len(pairs) else None)
    pairs = pairs[pairs["a"] == base]
    floors = rows[rows["kind"] == "floor"]
    names = list(dict.fromkeys([*pairs["b"], *floors["a"]]))
    colors = _colors(names)
    positive = rows["distance"][rows["distance"] > 0]
    zero = float(positive.min()) / 10 if len(positive) else 1e-16
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    for name in dict.fromkeys(pairs["b"]):
        r = pairs[pairs["b"] == name]
        ax.plot(r["step"], np.maximum(r["distance"], zero), label=f"{base} vs {name}", color=colors[name], lw=1.4)
    for name in dict.fromkeys(floors["a"]):
        r = floors[floors["a"] == name]
        ax.plot(r["step"], np.maximum(r["distance"], zero), color=colors[name], lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(zero, color="grey", lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("‖θ_a − θ_b‖ (0 drawn at the grey line)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return png(fig)


__all__ = ["attribution_table", "divergence_figure", "groups", "headlines", "html_section", "knobs_table",
           "loss_figure", "markdown_section", "pairs_table", "runs_table"]
