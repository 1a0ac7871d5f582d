"""The Data page's chart: a price / feature series with the held-out span shaded and ground-truth regimes in the
one regime palette, long series strided to ``style.MAX_LINE_POINTS`` per trace (``style.stride``). Knows nothing
about Streamlit or models.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import MAX_LINE_POINTS, MISSING_COLOR, regime_color, stride


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
    step = stride(t, max_points)
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
        # Ground-truth regime k in the palette colour the other pages give regime k; missing labels (< 0) grey.
        colours = [regime_color(v) if v >= 0 else MISSING_COLOR for v in lab.tolist()]
        fig.add_trace(go.Scatter(x=xs[sel], y=np.asarray(columns[price_name])[sel], mode="markers", name="regime",
                                 marker=dict(size=3, color=colours), customdata=lab,
                                 hovertemplate="regime %{customdata}<extra></extra>"), row=1, col=1)
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
