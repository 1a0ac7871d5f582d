"""Figures of the Train page: a training history (the engine's per-epoch dicts) as three linked panels, the
encoder's loss terms (total, InfoNCE, TER, LCR), the batch latent entropy against its TER target, and the
predictor's MSE. Knows nothing about Streamlit or models; the app calls it on every rerun (also while training
runs), so it only reads its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One colour per loss term, kept identical between the live chart and the final one.
COLOURS = {"loss": "#1f2937", "infonce": "#2563eb", "ter": "#dc2626", "lcr": "#16a34a",
           "entropy": "#7c3aed", "entropy_target": "#7c3aed", "predictor": "#ea580c"}
ENCODER_TERMS = (("loss", "total"), ("infonce", "InfoNCE"), ("ter", "TER"), ("lcr", "LCR"))

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
    _add_encoder_losses(fig, enc)
    _add_entropy(fig, enc)
    fig.add_trace(go.Scatter(x=[h["epoch"] for h in pred], y=[h.get("loss") for h in pred], mode="lines+markers",
                             name="predictor MSE", line=dict(color=COLOURS["predictor"], width=2),
                             marker=dict(size=4)), row=1, col=3)
    _epoch_axes(fig, ((1, encoder_epochs, enc), (2, encoder_epochs, enc), (3, predictor_epochs, pred)))
    if not enc and not pred:
        fig.add_annotation(text="no epochs yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(size=14, color="#6b7280"))
    fig.update_layout(height=height, margin=dict(l=40, r=10, t=40, b=80), template="plotly_white",
                      legend=dict(orientation="h", yanchor="top", y=-0.28, x=0), uirevision="loss")
    return fig


def _add_encoder_losses(fig: go.Figure, enc: list[dict[str, Any]]) -> None:
    """Every encoder loss term against its epoch, collapsed epochs marked with a red x on the total."""
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


def _add_entropy(fig: go.Figure, enc: list[dict[str, Any]]) -> None:
    ex = [h["epoch"] for h in enc]
    fig.add_trace(go.Scatter(x=ex, y=[h.get("entropy") for h in enc], mode="lines+markers", name="entropy",
                             line=dict(color=COLOURS["entropy"], width=2), marker=dict(size=4)), row=1, col=2)
    fig.add_trace(go.Scatter(x=ex, y=[h.get("entropy_target") for h in enc], mode="lines", name="target",
                             line=dict(color=COLOURS["entropy_target"], width=1.5, dash="dash")), row=1, col=2)


def _epoch_axes(fig: go.Figure, panels: tuple) -> None:
    """x range of each (col, planned epochs, rows) panel fixed to the planned run, about 8 whole-epoch ticks."""
    for col, n, rows in panels:
        last = n or max((h["epoch"] for h in rows), default=1)
        fig.update_xaxes(title_text="epoch", range=[0.5, max(last, 1) + 0.5], tick0=1,
                         dtick=max(1, -(-last // 8)), row=1, col=col)
