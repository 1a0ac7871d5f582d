"""Figure builders for the Data and Train pages: pure functions, data in, plotly figure out.

``loss_figure`` draws a training history (the engine's per-epoch dicts) as three linked panels: the encoder's
loss terms (total, InfoNCE, TER, LCR), the batch latent entropy against its TER target, and the predictor's
MSE. ``series_figure`` draws a price / feature series with the held-out span shaded. Knows nothing about
Streamlit or models; the app calls these on every rerun, so they only read their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One colour per loss term, kept identical between the live chart and the final one.
COLOURS = {"loss": "#1f2937", "infonce": "#2563eb", "ter": "#dc2626", "lcr": "#16a34a",
           "entropy": "#7c3aed", "entropy_target": "#7c3aed", "predictor": "#ea580c"}
ENCODER_TERMS = (("loss", "total"), ("infonce", "InfoNCE"), ("ter", "TER"), ("lcr", "LCR"))
MAX_LINE_POINTS = 4000  # per trace; longer series are strided so a 1M-tick upload still draws in a browser


def _stage(history: Sequence[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    return [h for h in history if h.get("stage") == stage]


def loss_figure(history: Sequence[dict[str, Any]], encoder_epochs: int | None = None,
                predictor_epochs: int | None = None, height: int = 340) -> go.Figure:
    """Three panels of a training history: encoder losses, entropy vs target, predictor MSE, against epoch.

    ``history``: dicts with ``stage`` ("encoder" | "predictor"), ``epoch`` (1-based) and the metrics the
    training loops log (encoder: loss, infonce, ter, lcr, entropy, entropy_target, collapsed; predictor: loss).
    ``encoder_epochs`` / ``predictor_epochs`` fix the x ranges to the planned run, so a live chart does not
    rescale as epochs arrive. Epochs whose latents were flagged collapsed get a red x on the total loss.

    >>> fig = loss_figure([{"stage": "encoder", "epoch": 1, "loss": 2.0, "infonce": 1.5, "ter": 0.1,
    ...                     "lcr": 0.4, "entropy": 1.1, "entropy_target": 1.0}])
    >>> [t.name for t in fig.data][:4]
    ['total', 'InfoNCE', 'TER', 'LCR']
    """
    enc, pred = _stage(history, "encoder"), _stage(history, "predictor")
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07,
                        subplot_titles=("Encoder losses", "Batch entropy vs TER target", "Predictor MSE"))
    ex = [h["epoch"] for h in enc]
    for key, name in ENCODER_TERMS:
        fig.add_trace(go.Scatter(x=ex, y=[h.get(key) for h in enc], mode="lines+markers", name=name,
                                 line=dict(color=COLOURS[key], width=2.5 if key == "loss" else 1.6),
                                 marker=dict(size=4)), row=1, col=1)
    bad = [h for h in enc if h.get("collapsed")]
    if bad:
        fig.add_trace(go.Scatter(x=[h["epoch"] for h in bad], y=[h.get("loss") for h in bad], mode="markers",
                                 name="collapsed", marker=dict(symbol="x", size=11, color="#dc2626")),
                      row=1, col=1)
    fig.add_trace(go.Scatter(x=ex, y=[h.get("entropy") for h in enc], mode="lines+markers", name="entropy",
                             line=dict(color=COLOURS["entropy"], width=2), marker=dict(size=4)), row=1, col=2)
    fig.add_trace(go.Scatter(x=ex, y=[h.get("entropy_target") for h in enc], mode="lines", name="target",
                             line=dict(color=COLOURS["entropy_target"], width=1.5, dash="dash")), row=1, col=2)
    fig.add_trace(go.Scatter(x=[h["epoch"] for h in pred], y=[h.get("loss") for h in pred], mode="lines+markers",
                             name="predictor MSE", line=dict(color=COLOURS["predictor"], width=2),
                             marker=dict(size=4)), row=1, col=3)
    for col, n, rows in ((1, encoder_epochs, enc), (2, encoder_epochs, enc), (3, predictor_epochs, pred)):
        last = n or max((h["epoch"] for h in rows), default=1)
        # Whole epochs only: about 8 integer ticks whatever the run length.
        fig.update_xaxes(title_text="epoch", range=[0.5, max(last, 1) + 0.5], tick0=1,
                         dtick=max(1, -(-last // 8)), row=1, col=col)
    if not enc and not pred:
        fig.add_annotation(text="no epochs yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(size=14, color="#6b7280"))
    fig.update_layout(height=height, margin=dict(l=40, r=10, t=40, b=80), template="plotly_white",
                      legend=dict(orientation="h", yanchor="top", y=-0.28, x=0), uirevision="loss")
    return fig


def _stride(n: int, max_points: int) -> int:
    return max(1, int(np.ceil(n / max_points)))


def series_figure(x: np.ndarray | None, columns: dict[str, np.ndarray], split: int,
                  price_name: str | None = None, labels: np.ndarray | None = None,
                  height: int = 420, max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """A price / feature chart with the held-out span (ticks ``split`` .. end) shaded.

    ``x``: (T,) timestamps or None for tick numbers; ``columns``: name -> (T,) values. When ``price_name`` names
    one of the columns it gets its own top panel and the others share a panel below (each z-scored so they fit
    one axis); otherwise all share one panel. ``labels`` (T,) ground-truth regimes are drawn as a thin coloured
    band under the price. Long series are strided to about ``max_points`` per trace (the chart says so).
    """
    if not columns:
        raise ValueError("series_figure needs at least one column to draw")
    t = len(next(iter(columns.values())))
    for name, v in columns.items():
        if len(v) != t:
            raise ValueError(f"column {name!r} has {len(v)} values but the first column has {t}")
    xs = np.arange(t) if x is None else np.asarray(x)
    step = _stride(t, max_points)
    sel = slice(None, None, step)
    others = [c for c in columns if c != price_name]
    has_price = price_name in columns
    rows = 1 + int(has_price and bool(others))
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.55, 0.45] if rows == 2 else None)
    if has_price:
        fig.add_trace(go.Scatter(x=xs[sel], y=np.asarray(columns[price_name])[sel], mode="lines", name=price_name,
                                 line=dict(color="#111827", width=1.4)), row=1, col=1)
        fig.update_yaxes(title_text=price_name, row=1, col=1)
    palette = ["#2563eb", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#b45309"]
    for i, name in enumerate(others):
        v = np.asarray(columns[name], dtype=np.float64)
        if rows == 2 or len(others) > 1:  # several features on one axis: z-score so they are comparable
            sd = np.nanstd(v)
            v = (v - np.nanmean(v)) / (sd if sd > 0 else 1.0)
        fig.add_trace(go.Scatter(x=xs[sel], y=v[sel], mode="lines", name=name, opacity=0.85,
                                 line=dict(width=1, color=palette[i % len(palette)])), row=rows, col=1)
    if rows == 2 or (not has_price and len(others) > 1):
        fig.update_yaxes(title_text="z-score", row=rows, col=1)
    if labels is not None and has_price:
        lab = np.asarray(labels)[sel]
        fig.add_trace(go.Scatter(x=xs[sel], y=np.asarray(columns[price_name])[sel], mode="markers", name="regime",
                                 marker=dict(size=3, color=lab, colorscale="Turbo", showscale=False),
                                 hovertemplate="regime %{marker.color}<extra></extra>"), row=1, col=1)
    if 0 < split < t:
        x0, x1 = xs[split], xs[-1]
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#f59e0b", opacity=0.13, line_width=0, row="all", col=1)
        fig.add_annotation(x=x0, y=1.0, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                           text=f" held out ({t - split:,} ticks)", font=dict(size=11, color="#b45309"))
    if step > 1:
        fig.add_annotation(text=f"1 in {step} ticks drawn ({t:,} in all)", showarrow=False, xref="paper",
                           yref="paper", x=1.0, y=1.0, xanchor="right", yanchor="bottom",
                           font=dict(size=11, color="#6b7280"))
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=30), template="plotly_white",
                      hovermode="x unified", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
