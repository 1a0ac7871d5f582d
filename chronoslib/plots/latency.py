"""Figures of the Latency page: the per-call latency histogram, the time per predict_live stage, and the
measured figures next to the ChronosDefrag 0.1.0 reference. Knows nothing about Streamlit or models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import ALERT, FROZEN, GREY, plain_layout

STAGES = ("encode", "query", "spd", "predictor")

def latency_histogram(samples_ms: Sequence[float], height: int = 300, title: str | None = None) -> go.Figure:
    """Per-call latency histogram with p50 / p95 / p99 marked. The x axis stops at 1.6 x p99 so a few
    scheduler hiccups do not squash the distribution; how many calls lie beyond is said in the axis title."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to plot")
    q = {p: float(np.percentile(x, p)) for p in (50, 95, 99)}
    hi = max(1.6 * q[99], 1e-3)
    beyond = int(np.count_nonzero(x > hi))
    fig = go.Figure(go.Histogram(x=x[x <= hi], nbinsx=60, marker_color=FROZEN, name="calls"))
    for (p, v), dash, y in zip(q.items(), ("solid", "dash", "dot"), (1.0, 0.88, 0.76)):
        fig.add_vline(x=v, line=dict(color=ALERT, dash=dash, width=1.5))
        fig.add_annotation(x=v, y=y, xref="x", yref="paper", text=f"p{p} {v:.2f} ms", showarrow=False,
                           xanchor="left", xshift=4, font=dict(color=ALERT, size=11), bgcolor="rgba(255,255,255,0.7)")
    fig.update_xaxes(range=[0, hi], title_text="latency per call (ms)" + (f" · {beyond} slower call(s) beyond the "
                                                                       "axis" if beyond else ""))
    fig.update_yaxes(title_text="calls")
    return plain_layout(fig, height, title, legend=False)


def stage_breakdown(stage_ms: dict[str, float], height: int = 260, title: str | None = None) -> go.Figure:
    """Horizontal bars of the median time per predict_live stage (encode, registry query, SPD, predictor)."""
    if not stage_ms:
        raise ValueError("no stage timings to plot")
    names = [s for s in STAGES if s in stage_ms] + [s for s in stage_ms if s not in STAGES]
    labels = {"encode": "encode", "query": "registry query", "spd": "SPD + context", "predictor": "predictor"}
    vals = [float(stage_ms[s]) for s in names]
    total = sum(vals) or 1.0
    fig = go.Figure(go.Bar(x=vals, y=[labels.get(s, s) for s in names], orientation="h", marker_color=FROZEN,
                           text=[f"{v:.3f} ms ({v / total:.0%})" for v in vals], textposition="auto"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="median ms per call")
    return plain_layout(fig, height, title, legend=False)


def spec_comparison(measured: dict[str, float], spec: dict[str, float], height: int = 280) -> go.Figure:
    """ChronosDefrag 0.1.0 reference figures next to the measured ones: mean / p99 latency (ms), QPS."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("latency (ms, lower is better)", "QPS (higher is better)"))
    rows = (("reference 0.1.0 (M2 Pro)", GREY, [spec.get("predict_live_mean_ms"), spec.get("predict_live_p99_ms")],
             spec.get("qps")),
            ("measured here", FROZEN, [measured.get("mean_ms"), measured.get("p99_ms")], measured.get("qps")))
    for name, colour, lat, qps in rows:
        fig.add_trace(go.Bar(x=["mean", "p99"], y=lat, name=name, marker_color=colour, legendgroup=name,
                             text=[f"{v:.2f}" if v is not None else "" for v in lat]), row=1, col=1)
        fig.add_trace(go.Bar(x=["QPS"], y=[qps], name=name, marker_color=colour, legendgroup=name,
                             showlegend=False, text=[f"{qps:,.0f}" if qps is not None else ""]), row=1, col=2)
    fig.update_layout(barmode="group")
    plain_layout(fig, height)
    return fig.update_layout(margin=dict(t=70), legend=dict(y=1.18))
