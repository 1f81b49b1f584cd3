"""The report's figures, as PNG bytes (matplotlib's object API on the Agg canvas: no display,
no pyplot global state, safe in any thread).

* `divergence_figure`: divergence vs step per adapter, one panel per dtype, log-log, in
  units of each row's own tolerance so that one line at 1 is every adapter's tolerance;
* `ulp_figure`: per-element ULP error histograms at the last step, one panel per adapter;
* `parity_heatmap` / `attribution_heatmap`: the pairwise divergence matrix of a parity
  scenario, and each knob's own effect per diverging pair;
* `seed_contour`: the seed document's picture, SGD and each framework's RMSprop on an
  ill-conditioned quadratic, over its contour lines.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.base.schema import ULP_LABELS

FLOOR = 1e-3  # where an exactly-zero divergence is drawn on a log axis (marked in the legend)
_DPI = 90


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _colors(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if len(names) > 10 else "tab10"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def divergence_figure(div: pd.DataFrame, case: str) -> bytes:
    """``budget_ratio / tolerance`` vs step for every adapter of ``case`` (one panel per dtype@device)."""
    rows = div[div["case"] == case]
    panels = list(dict.fromkeys(f"{d}@{v}" for d, v in zip(rows["dtype"], rows["device"], strict=True)))
    fig = Figure(figsize=(5.2 * len(panels), 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = _colors(list(dict.fromkeys(rows["adapter"])))
    for ax, panel in zip(axes, panels, strict=True):
        dtype, device = panel.split("@")
        sub = rows[(rows["dtype"] == dtype) & (rows["device"] == device)]
        ratio = (sub["budget_ratio"] / sub["tolerance"]).to_numpy(float)
        finite = ratio[np.isfinite(ratio)]
        top = max(10.0, float(finite.max()) * 10 if finite.size else 10.0)  # non-finite: drawn at the top, as x
        for adapter, g in sub.groupby("adapter", sort=False):
            used = (g["budget_ratio"] / g["tolerance"]).to_numpy(float)
            bad = ~np.isfinite(used)
            shown = np.where(bad, top, np.where(used > 0, used, FLOOR))
            ax.plot(g["step"], shown, marker="o", ms=3, lw=1.2, label=adapter, color=colors[adapter])
            if bad.any():
                ax.plot(g["step"][bad], shown[bad], ls="none", marker="x", ms=8, color=colors[adapter])
        ax.axhline(1.0, color="crimson", lw=1.5, ls="--", label="tolerance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 2, top * 2)
        ax.set_xlabel("step")
        ax.set_ylabel("divergence / tolerance")
        ax.set_title(f"{case}: {panel}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8,
               title=f"exact: drawn at {FLOOR:g}\nx: infinite (NaN/inf)", title_fontsize=7)
    return png(fig)


def ulp_figure(hist: pd.DataFrame) -> bytes:
    """Fraction of parameter elements per ULP bin at the last step, per adapter and dtype (all cases)."""
    adapters = list(dict.fromkeys(hist["adapter"]))
    dtypes = list(dict.fromkeys(hist["dtype"]))
    cols = min(4, len(adapters))
    rows_n = math.ceil(len(adapters) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows_n), layout="constrained")
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
    x = np.arange(len(ULP_LABELS))
    width = 0.8 / max(len(dtypes), 1)
    colors = _colors(dtypes)
    for ax, adapter in zip(axes, adapters, strict=False):
        sub = hist[hist["adapter"] == adapter]
        for j, dtype in enumerate(dtypes):
            counts = sub[sub["dtype"] == dtype].groupby("bin")["count"].sum().reindex(range(len(ULP_LABELS)),
                                                                                      fill_value=0)
            total = counts.sum()
            if total:
                ax.bar(x + (j - (len(dtypes) - 1) / 2) * width, counts / total, width, label=dtype,
                       color=colors[dtype])
        ax.set_title(adapter, fontsize=9)
        ax.set_xticks(x, ULP_LABELS, rotation=90, fontsize=7)
        ax.set_ylim(0, 1)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(adapters):]:
        ax.set_visible(False)
    axes[0].set_ylabel("fraction of elements")
    axes[0].legend(fontsize=7)
    fig.suptitle("ULP error of every parameter element at the last step (all cases)", fontsize=10)
    return png(fig)


def _matrix(pairs: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(dict.fromkeys([*pairs["a"], *pairs["b"]]))
    index = {n: i for i, n in enumerate(names)}
    value = np.full((len(names), len(names)), np.nan)
    verdict = np.full((len(names), len(names)), "", dtype=object)
    for r in pairs.itertuples():
        for i, j in ((index[r.a], index[r.b]), (index[r.b], index[r.a])):
            value[i, j], verdict[i, j] = r.divergence, r.verdict
    return names, value, verdict


def parity_heatmap(pairs: pd.DataFrame, scenario: str) -> bytes:
    """log10 of the pairwise divergence (``=``: bitwise identical, ``~``: float64 rounding level)."""
    names, value, verdict = _matrix(pairs[pairs["scenario"] == scenario])
    with np.errstate(divide="ignore"):
        logv = np.log10(np.where(value > 0, value, 1e-17))
    size = 0.55 * len(names) + 2.2
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.where(np.isnan(value), np.nan, logv), cmap="magma_r", vmin=-17, vmax=0.5)
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j or np.isnan(value[i, j]):
                continue
            v = value[i, j]
            text = {"identical": "=", "rounding": "~"}.get(verdict[i, j], f"{v:.2f}" if v >= 0.01
                                                           else f"{v:.0e}".replace("e-0", "e-"))
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if logv[i, j] > -6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title(f"parity: {scenario}\n(divergence = ||p_a - p_b|| / distance moved)", fontsize=9)
    fig.colorbar(im, ax=ax, label="log10 divergence", shrink=0.8)
    return png(fig)


def attribution_heatmap(attribution: pd.DataFrame, scenario: str) -> bytes | None:
    """Each knob's own effect (log10 of the divergence it causes alone), annotated with its share."""
    rows = attribution[(attribution["scenario"] == scenario) & (attribution["knob"] != "*")]
    if rows.empty:
        return None
    pairs = list(dict.fromkeys(f"{a} vs {b}" for a, b in zip(rows["a"], rows["b"], strict=True)))
    knobs = list(dict.fromkeys(rows["label"]))
    alone = np.full((len(pairs), len(knobs)), np.nan)
    share = np.full((len(pairs), len(knobs)), np.nan)
    for r in rows.itertuples():
        i, j = pairs.index(f"{r.a} vs {r.b}"), knobs.index(r.label)
        alone[i, j], share[i, j] = r.alone, r.share
    with np.errstate(divide="ignore"):
        logv = np.log10(np.where(alone > 0, alone, 1e-17))
    fig = Figure(figsize=(1.1 * len(knobs) + 4, 0.32 * len(pairs) + 2.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.where(np.isnan(alone), np.nan, logv), cmap="viridis", vmin=-17, vmax=0.5, aspect="auto")
    for i in range(len(pairs)):
        for j in range(len(knobs)):
            if not np.isnan(share[i, j]):
                text = "0%" if abs(share[i, j]) < 0.005 else f"{share[i, j]:.0%}"
                ax.text(j, i, text, ha="center", va="center",
                        fontsize=7, color="white" if logv[i, j] < -6 else "black")
    ax.set_xticks(range(len(knobs)), knobs, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(pairs)), pairs, fontsize=7)
    ax.set_title(f"attribution: {scenario} (colour: the knob's effect alone; text: share of the pair's "
                 "divergence it removes)", fontsize=9)
    fig.colorbar(im, ax=ax, label="log10 divergence alone", shrink=0.8)
    return png(fig)


def seed_contour(paths: dict[str, np.ndarray] | None = None) -> bytes:
    """The seed document's picture: SGD zig-zags across a steep, flat valley; RMSprop does not."""
    from harness.compare.seed_example import QUADRATIC, quadratic_loss, quadratic_paths

    paths = paths or quadratic_paths()
    x0, y0 = QUADRATIC["start"]
    xs = np.linspace(x0 - 0.5, -x0 * 0.3, 300)
    ys = np.linspace(-abs(y0) * 1.3, abs(y0) * 1.3, 200)
    X, Y = np.meshgrid(xs, ys)
    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.contour(X, Y, quadratic_loss(X, Y), levels=np.geomspace(0.005, 6, 14), colors="0.75", linewidths=0.8)
    styles = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]
    colors = _colors(list(paths))
    for k, (name, path) in enumerate(paths.items()):
        ax.plot(path[:, 0], path[:, 1], ls=styles[k % len(styles)], marker="o", ms=2.5, lw=1.4 if k else 1.8,
                color="black" if k == 0 else colors[name], label=name)
    ax.plot([0], [0], marker="*", ms=12, color="crimson", ls="none", label="minimum")
    a, b = QUADRATIC["a"], QUADRATIC["b"]
    steps = len(next(iter(paths.values()))) - 1
    ax.set_title(f"f(x, y) = ({a:g} x² + {b:g} y²)/2: SGD vs each framework's RMSprop (lr 0.1, decay 0.9, "
                 f"own defaults otherwise), {steps} steps", fontsize=9)
    ax.set_xlabel("x (flat direction)")
    ax.set_ylabel("y (steep direction)")
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def _label(r) -> str:
    return f"{r.adapter} {r.variant}" if not str(r.adapter).endswith(str(r.variant)) else str(r.adapter)


def throughput_size_figure(tp: pd.DataFrame) -> bytes | None:
    """Step time and effective GB/s vs parameters (model layout, one line per adapter variant, per
    device and dtype), with the measured copy bandwidth as the roofline."""
    ok = tp[(tp["status"] == "ok") & (tp["layout"] == "model")]
    if ok.empty:
        return None
    ok = ok.assign(line=[_label(r) + ("" if r.device == "cpu" else f" [{r.device}]") + ("" if r.dtype == "float32"
                                                                                     else f" {r.dtype}")
                         for r in ok.itertuples()])
    lines = list(dict.fromkeys(ok["line"]))
    colors = _colors(lines)
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for line, g in ok.groupby("line", sort=False):
        g = g.sort_values("n_params")
        kw = dict(marker="o", ms=3, lw=1.2, color=colors[line], label=line)
        left.errorbar(g["n_params"], g["median_s"], yerr=[g["median_s"] - g["q1_s"], g["q3_s"] - g["median_s"]],
                      **kw)
        right.plot(g["n_params"], g["gb_per_s"], **kw)
    copies = tp[(tp["status"] == "ok") & (tp["framework"] == "copy")]
    for (adapter, device, dtype), g in copies.groupby(["adapter", "device", "dtype"]):
        g = g.sort_values("n_params")
        right.plot(g["n_params"], g["gb_per_s"], ls="--", lw=1.5, color="0.4" if adapter == "copy.numpy" else "0.1",
                   label=f"{adapter} ({device}, {dtype}): roofline")
    n = np.geomspace(ok["n_params"].min(), ok["n_params"].max(), 10)
    ref = ok.loc[ok["n_params"].idxmax()]
    left.plot(n, ref["median_s"] * n / ref["n_params"], ls=":", color="0.5", label="linear in size")
    for ax, label in ((left, "seconds per step (median, IQR bars)"), (right, "effective GB/s (bytes the semantics "
                                                                               "must move)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    left.set_title("step time vs size", fontsize=10)
    right.set_title("throughput vs size, against the copy bandwidth", fontsize=10)
    handles, labels = right.get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(*left.get_legend_handles_labels(), strict=True) if lab == "linear in size"]
    fig.legend([*handles, *(h for h, _ in extra)], [*labels, *(lab for _, lab in extra)], loc="outside right upper",
               fontsize=7)
    return png(fig)


def throughput_tensors_figure(tp: pd.DataFrame) -> bytes | None:
    """Step time vs the number of tensors at a fixed total size: per-tensor launch overhead."""
    ok = tp[(tp["status"] == "ok") & (tp["layout"] != "model") & (tp["framework"] != "copy")]
    if ok.empty or ok["n_tensors"].nunique() < 2:
        return None
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    lines = list(dict.fromkeys(_label(r) for r in ok.itertuples()))
    colors = _colors(lines)
    for (size, device, dtype), group in ok.groupby(["n_params", "device", "dtype"]):
        for line in lines:
            g = group[[_label(r) == line for r in group.itertuples()]].sort_values("n_tensors")
            if len(g):
                bars = [g["median_s"] - g["q1_s"], g["q3_s"] - g["median_s"]]
                ax.errorbar(g["n_tensors"], g["median_s"], yerr=bars, marker="o", ms=4, color=colors[line],
                            label=f"{line} ({size:.0e} params, {device}, {dtype})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of tensors (same total parameters)")
    ax.set_ylabel("seconds per step")
    ax.set_title("per-tensor overhead: the same parameters in more, smaller tensors", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    return png(fig)
