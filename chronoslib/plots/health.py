"""Figures of the Diagnostics page, the representation's health: collapse curves per epoch, the histogram of
pairwise latent similarities, and drift over time (``metrics.collapse_curves`` and ``drift.drift_timeline``
give the numbers). Knows nothing about Streamlit or models.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..metrics import COLLAPSE_EFF_RANK, COLLAPSE_MEAN_COS, COLLAPSING_EFF_RANK, COLLAPSING_MEAN_COS
from .style import ALERT, FROZEN, WINDOW, is_time, plain_layout


def collapse_figure(curves: dict[str, np.ndarray], height: int = 300) -> go.Figure:
    """Three panels per encoder epoch: batch entropy vs its TER target, mean pairwise cosine (collapse
    thresholds dashed) and effective rank (thresholds dashed). ``curves`` as from metrics.collapse_curves."""
    ep = np.asarray(curves["epoch"])
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07,
                        subplot_titles=("Batch entropy vs TER target", "Mean pairwise cosine", "Effective rank"))
    fig.add_trace(go.Scatter(x=ep, y=curves["entropy"], mode="lines+markers", name="entropy",
                             line=dict(color="#7c3aed"), marker=dict(size=4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=ep, y=curves["entropy_target"], mode="lines", name="TER target",
                             line=dict(color="#7c3aed", dash="dash")), row=1, col=1)
    fig.add_trace(go.Scatter(x=ep, y=curves["mean_cos"], mode="lines+markers", name="mean cos",
                             line=dict(color=FROZEN), marker=dict(size=4)), row=1, col=2)
    fig.add_trace(go.Scatter(x=ep, y=curves["eff_rank"], mode="lines+markers", name="effective rank",
                             line=dict(color="#16a34a"), marker=dict(size=4)), row=1, col=3)
    for col, (bad, warn) in ((2, (COLLAPSE_MEAN_COS, COLLAPSING_MEAN_COS)), (3, (COLLAPSE_EFF_RANK,
                                                                               COLLAPSING_EFF_RANK))):
        fig.add_hline(y=bad, line=dict(color=ALERT, dash="dash", width=1), row=1, col=col)
        fig.add_hline(y=warn, line=dict(color=WINDOW, dash="dot", width=1), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    plain_layout(fig, height)
    return fig.update_layout(margin=dict(t=80), legend=dict(y=1.22))


def similarity_histogram(sims: np.ndarray, height: int = 280) -> go.Figure:
    """Histogram of pairwise cosine similarities of block latents, mean marked, x fixed to [-1, 1]."""
    s = np.asarray(sims, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no similarities to plot (need at least 2 latents)")
    fig = go.Figure(go.Histogram(x=s, xbins=dict(start=-1, end=1, size=0.04), marker_color=FROZEN))
    fig.add_vline(x=float(s.mean()), line=dict(color=ALERT, dash="dash"), annotation_text=f"mean {s.mean():.2f}")
    fig.update_xaxes(range=[-1, 1], title_text="cosine similarity between blocks")
    fig.update_yaxes(title_text="pairs")
    return plain_layout(fig, height, legend=False)


def drift_figure(ticks: np.ndarray, timeline: dict[str, np.ndarray], confidence: np.ndarray,
                 neighbour_age: np.ndarray, refit_threshold: float, times: np.ndarray | None = None,
                 height: int = 620) -> go.Figure:
    """Four stacked panels against tick (or time): centroid distance and MMD^2 of the trailing window (thresholds
    dashed, the drifted level dotted when the timeline has one; drifting windows red), mean age of retrieved
    neighbours, and confidence with the re-fit threshold. ``ticks`` (M,) per window; ``times`` (M,) datetimes per
    window put the panels on a date axis; ``timeline`` from drift.drift_timeline over the same windows."""
    dated = times is not None and is_time(times)
    if dated and len(times) != len(ticks):
        raise ValueError(f"times has {len(times)} values but there are {len(ticks)} windows")
    t = np.asarray(times) if dated else np.asarray(ticks, dtype=np.float64)
    te = t[np.asarray(timeline["end"], dtype=np.int64)]
    drift = np.asarray(timeline["drift"], dtype=bool)
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("Distance of the window's mean latent to the training centroid",
                                        "MMD² of the window against the training latents",
                                        "Mean age of retrieved neighbours (ticks)", "Regime confidence"))
    for row, key in ((1, "centroid_dist"), (2, "mmd2")):
        thr = "centroid_threshold" if key == "centroid_dist" else "mmd_threshold"
        y = np.asarray(timeline[key])
        fig.add_trace(go.Scatter(x=te, y=y, mode="lines", line=dict(color=FROZEN), name=key, showlegend=False),
                      row=row, col=1)
        fig.add_trace(go.Scatter(x=te, y=timeline[thr], mode="lines", line=dict(color=ALERT, dash="dash"),
                                 name="threshold", showlegend=row == 1), row=row, col=1)
        if f"{thr}_drifted" in timeline:        # the stricter level that makes the verdict "drifted"
            fig.add_trace(go.Scatter(x=te, y=timeline[f"{thr}_drifted"], mode="lines",
                                     line=dict(color=ALERT, dash="dot"), name="drifted level",
                                     showlegend=row == 1), row=row, col=1)
        if drift.any():
            fig.add_trace(go.Scatter(x=te[drift], y=y[drift], mode="markers", marker=dict(color=ALERT, size=7),
                                     name="drift", showlegend=row == 1), row=row, col=1)
    age = np.nanmean(np.asarray(neighbour_age, dtype=np.float64), axis=1)
    fig.add_trace(go.Scatter(x=t, y=age, mode="lines", line=dict(color="#0f766e"), showlegend=False), row=3, col=1)
    fig.add_trace(go.Scatter(x=t, y=confidence, mode="lines", line=dict(color=FROZEN), showlegend=False),
                  row=4, col=1)
    fig.add_hline(y=refit_threshold, line=dict(color=ALERT, dash="dash"), row=4, col=1)
    fig.update_xaxes(title_text="time" if dated else "tick", row=4, col=1)
    if dated:
        fig.update_xaxes(type="date")
    return plain_layout(fig, height)
