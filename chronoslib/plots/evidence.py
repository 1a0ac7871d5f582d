"""Figures of the Evidence page (``experiments.run_evaluation``'s result): every bar carries its 95 % interval
over seeds as an error bar and the individual seeds are drawn as dots on top, so a reader sees the spread, not
just a mean; ``seed_table`` gives the per-seed numbers under the figures. Wording and labels come from
``verdicts``. Knows nothing about Streamlit or about how the numbers were made.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..verdicts import ARM_LABEL, METHOD_LABEL, PROTOCOL_LABEL, as_float, fmt_ci, interval_sign

ARM_COLOUR = {"pseudo": "#2a9d8f", "chrono": "#457b9d", "random": "#b0b0b0"}
METHOD_COLOUR = {"latent_kmeans": "#2a9d8f", "stats_kmeans": "#e9c46a", "stats_hmm": "#e76f51"}
GOOD, BAD, NEUTRAL = "#2a9d8f", "#e76f51", "#9e9e9e"

def _bars_with_seeds(fig: go.Figure, x: list[str], stats: list[dict], name: str, colour: str, row: int | None = None,
                     col: int | None = None, showlegend: bool = True) -> None:
    """A bar per x with its interval as an error bar, plus the per-seed values as dots (same offset group)."""
    kw = {} if row is None else {"row": row, "col": col}
    means = [as_float(s.get("mean")) for s in stats]
    cis = [as_float(s.get("ci")) for s in stats]
    fig.add_trace(go.Bar(x=x, y=means, name=name, marker_color=colour, offsetgroup=name, legendgroup=name,
                         showlegend=showlegend,
                         error_y={"type": "data", "array": [c if math.isfinite(c) else 0 for c in cis],
                                  "visible": True, "color": "#333", "thickness": 1.5},
                         hovertemplate=f"{name}<br>%{{x}}: %{{y:.4f}}<extra></extra>"), **kw)
    xs, ys = [], []
    for xi, s in zip(x, stats):
        for v in s.get("values", []):
            if v is not None and math.isfinite(v):
                xs.append(xi)
                ys.append(v)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{name} (seeds)", legendgroup=name,
                             offsetgroup=name, showlegend=False,
                             marker={"color": "#222", "size": 6, "symbol": "circle-open"},
                             hovertemplate=f"{name} seed<br>%{{y:.4f}}<extra></extra>"), **kw)


def _layout(fig: go.Figure, title: str, ytitle: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, barmode="group", scattermode="group", height=height, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 40},
                      legend={"orientation": "h", "y": -0.15, "x": 0})
    fig.update_yaxes(title_text=ytitle)
    return fig


def _arm_bars(result: dict, metric: str) -> go.Figure:
    """Grouped bars of ``summary[metric][protocol][arm]`` (mean, interval and per-seed dots) for every arm."""
    protocols = result["protocols"]
    x = [PROTOCOL_LABEL.get(p, p) for p in protocols]
    fig = go.Figure()
    for arm in result["arms"]:
        _bars_with_seeds(fig, x, [result["summary"][metric][p][arm] for p in protocols], ARM_LABEL[arm],
                         ARM_COLOUR[arm])
    return fig


def error_figure(result: dict) -> go.Figure:
    """Held-out next-block latent MSE per protocol and arm, with intervals, seeds and naive baselines."""
    s = result["summary"]
    fig = _arm_bars(result, "error")
    # Labels on opposite sides of their lines: the two baselines are often within a few pixels of each other.
    for b, dash, label, where in (("persistence", "dash", "persistence (next = current)", "bottom right"),
                                  ("train_mean", "dot", "training mean", "top left")):
        st = s.get("baselines", {}).get(b)
        if st and st.get("mean") is not None:
            fig.add_hline(y=st["mean"], line_dash=dash, line_color="#555",
                          annotation_text=f"{label}: {st['mean']:.4f}", annotation_position=where)
    return _layout(fig, f"Held-out next-block latent error (MSE, {len(result['seeds'])} seeds, 95 % CI)",
                   "mean squared error (lower is better)")


def reduction_figure(result: dict) -> go.Figure:
    """Paired error reduction (%) of pseudo-timeline training vs chronological and vs random order."""
    s = result["summary"]["error_reduction_pct"]
    ys, means, cis, colours, texts = [], [], [], [], []
    for p in result["protocols"]:
        for versus in ("chrono", "random"):
            st = s[p][f"vs_{versus}"]
            m, h = as_float(st.get("mean")), as_float(st.get("ci"))
            txt = fmt_ci(m, h, 1, " %").replace(" (no interval: one seed)", "")
            ys.append(f"vs {ARM_LABEL[versus]} · {PROTOCOL_LABEL.get(p, p)}<br><b>{txt}</b>")
            means.append(m)
            cis.append(h if math.isfinite(h) else 0.0)
            sign = interval_sign(m, h)
            colours.append(GOOD if sign > 0 else BAD if sign < 0 else NEUTRAL)
            texts.append(txt)
    fig = go.Figure(go.Bar(y=ys, x=means, orientation="h", marker_color=colours, customdata=texts,
                           error_x={"type": "data", "array": cis, "visible": True, "color": "#333"},
                           hovertemplate="%{customdata}<extra></extra>", showlegend=False))
    fig.add_vline(x=0, line_color="#333", line_width=1)
    fig.update_layout(title="Error reduction from defragmented training (paired per seed; > 0 = pseudo-timeline "
                      "better)", height=340, template="plotly_white", margin={"l": 330, "r": 30, "t": 60, "b": 40})
    fig.update_xaxes(title_text="% reduction of held-out error")
    return fig


def spearman_figure(result: dict) -> go.Figure:
    """Spearman rank correlation of alpha with the next block's return, per protocol and arm."""
    s = result["summary"]
    if not result.get("has_prices"):
        fig = go.Figure()
        fig.add_annotation(text="this dataset has no price column: no alpha test", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Alpha vs next-block return", "Spearman rho")
    fig = _arm_bars(result, "spearman")
    st = s.get("baselines", {}).get("persistence_spearman")
    if st and st.get("mean") is not None:
        fig.add_hline(y=st["mean"], line_dash="dash", line_color="#555",
                      annotation_text=f"baseline, current latent[0]: {st['mean']:.3f}",
                      annotation_position="bottom right")
    fig.add_hline(y=0, line_color="#333", line_width=1)
    return _layout(fig, "Alpha vs next block's log return (Spearman rho, 95 % CI)", "Spearman rho")


def regime_figure(result: dict) -> go.Figure:
    """ARI and NMI of latent clusters vs the two block-statistics baselines, on training and held-out blocks."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Adjusted Rand index", "Normalised mutual information"))
    if not result.get("has_regimes"):
        fig.add_annotation(text="no ground-truth labels in this dataset: regime recovery not scored",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Regime recovery", "score")
    r = result["summary"]["regimes"]
    x = ["training blocks", "held-out blocks"]
    for j, metric in enumerate(("ari", "nmi")):
        for meth in ("latent_kmeans", "stats_kmeans", "stats_hmm"):
            _bars_with_seeds(fig, x, [r[span][meth][metric] for span in ("train", "heldout")], METHOD_LABEL[meth],
                             METHOD_COLOUR[meth], row=1, col=j + 1, showlegend=j == 0)
    _layout(fig, f"Regime recovery vs ground truth ({result.get('n_regimes')} regimes, 95 % CI over seeds)",
            "score (1 = perfect)", height=400)
    lows = [as_float(st[m]["mean"]) - (as_float(st[m]["ci"]) if math.isfinite(as_float(st[m]["ci"])) else 0.0)
            for span in r.values() for st in span.values() for m in ("ari", "nmi")]
    fig.update_yaxes(range=[min([0.0, *[v for v in lows if math.isfinite(v)]]) - 0.02, 1.05])  # ARI can dip < 0
    return fig


def seed_table(result: dict) -> list[dict[str, Any]]:
    """One row per seed with the main numbers (for a table under the plots)."""
    rows = []
    for r in result["per_seed"]:
        row: dict[str, Any] = {"seed": r["seed"], "path cost ratio": r["path_cost_ratio"]}
        for p in result["protocols"]:
            for arm in result["arms"]:
                row[f"MSE {arm} ({p})"] = r["error"][p][arm]
        if result.get("has_prices"):
            for arm in result["arms"]:
                row[f"rho {arm} (routed)"] = r["spearman"]["routed"][arm]
        if result.get("has_regimes"):
            for meth in ("latent_kmeans", "stats_kmeans", "stats_hmm"):
                row[f"ARI {meth} (held-out)"] = r["regimes"]["heldout"][meth]["ari"]
        rows.append(row)
    return rows
