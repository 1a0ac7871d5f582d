"""The Data page's chart: a price / feature series with the held-out span shaded and ground-truth regimes in the
one regime palette, long series strided to ``style.MAX_LINE_POINTS`` per trace (``style.stride``). Knows nothing
about Streamlit or models.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import MAX_LINE_POINTS, MISSING_COLOR, add_band, regime_color, scatter_class, stride

# Feature lines (not regimes): a colour per column in the order given.
FEATURE_COLOURS = ("#2563eb", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#b45309")


def series_figure(x: np.ndarray | None, columns: dict[str, np.ndarray], split: int,
                  price_name: str | None = None, labels: np.ndarray | None = None,
                  height: int = 420, max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """A price / feature chart with the held-out span (ticks ``split`` .. end) shaded.

    ``x``: (T,) timestamps or None for tick numbers; ``columns``: name -> (T,) values. When ``price_name`` names
    one of the columns it gets its own top panel and the others share a panel below (each z-scored so they fit
    one axis); otherwise all share one panel. ``labels`` (T,) ground-truth regimes are drawn as a thin coloured
    band under the price. Long series are strided to about ``max_points`` per trace (the chart says so).
    """
    t = _series_length(columns)
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
    _add_features(fig, xs, {c: np.asarray(columns[c], dtype=np.float64) for c in others}, sel,
                  z_score=rows == 2 or len(others) > 1, row=rows)
    if labels is not None and has_price:
        _add_regime_marks(fig, xs[sel], np.asarray(columns[price_name])[sel], np.asarray(labels)[sel])
    _mark_held_out_and_stride(fig, xs, split, step)
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=30), template="plotly_white",
                      hovermode="x unified", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def _series_length(columns: dict[str, np.ndarray]) -> int:
    if not columns:
        raise ValueError("series_figure needs at least one column to draw")
    t = len(next(iter(columns.values())))
    for name, v in columns.items():
        if len(v) != t:
            raise ValueError(f"column {name!r} has {len(v)} values but the first column has {t}")
    return t


def _add_features(fig: go.Figure, xs: np.ndarray, features: dict[str, np.ndarray], sel: slice, z_score: bool,
                  row: int) -> None:
    """Feature lines on one panel (the ``sel`` points of each), z-scored over the whole series when several share
    its axis (so they are comparable)."""
    for i, (name, v) in enumerate(features.items()):
        if z_score:
            sd = np.nanstd(v)
            v = (v - np.nanmean(v)) / (sd if sd > 0 else 1.0)
        fig.add_trace(go.Scatter(x=xs[sel], y=v[sel], mode="lines", name=name, opacity=0.85,
                                 line=dict(width=1, color=FEATURE_COLOURS[i % len(FEATURE_COLOURS)])), row=row, col=1)
    if z_score:
        fig.update_yaxes(title_text="z-score", row=row, col=1)


def _add_regime_marks(fig: go.Figure, xs: np.ndarray, price: np.ndarray, labels: np.ndarray) -> None:
    """Ground-truth regime k in the palette colour the other pages give regime k; missing labels (< 0) grey."""
    colours = [regime_color(v) if v >= 0 else MISSING_COLOR for v in labels.tolist()]
    fig.add_trace(scatter_class(len(xs))(x=xs, y=price, mode="markers", name="regime",
                                         marker=dict(size=3, color=colours), customdata=labels,
                                         hovertemplate="regime %{customdata}<extra></extra>"), row=1, col=1)


def _mark_held_out_and_stride(fig: go.Figure, xs: np.ndarray, split: int, step: int) -> None:
    """Shade the held-out span (ticks split..end) and say how many ticks are drawn when strided."""
    t = len(xs)
    if 0 < split < t:
        # One band per panel (raw shapes: add_vrect's row="all" and its label do arithmetic on x), the label
        # centred over the band on the top panel.
        for row in range(1, len(fig._grid_ref) + 1):
            axes = fig.get_subplot(row, 1)
            add_band(fig, xs[split], xs[-1], "#f59e0b", 0.13,
                     f"held out ({t - split:,} ticks)" if row == 1 else None, font_colour="#b45309",
                     xref=axes.xaxis.plotly_name.replace("axis", ""), yref=axes.yaxis.plotly_name.replace("axis", ""))
    if step > 1:
        fig.add_annotation(text=f"1 in {step} ticks drawn ({t:,} in all)", showarrow=False, xref="paper",
                           yref="paper", x=1.0, y=1.0, xanchor="right", yanchor="bottom",
                           font=dict(size=11, color="#6b7280"))
