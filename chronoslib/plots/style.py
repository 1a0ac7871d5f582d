"""What every figure shares: the one regime palette, the highlight colour, point budgets and layout helpers.

Owns ``PALETTE`` / ``regime_color`` (regime k has the same colour on the Manifold, Timeline and Live replay
pages: regime 0 is the calmest after ``regimes.cluster_regimes`` ordering), ``HIGHLIGHT`` (selected blocks on
every chart), the live-chart colours, ``MAX_LINE_POINTS`` and ``stride`` / ``strided_ticks`` (the one way a long
series is thinned for a browser), the SVG / WebGL switch (``scatter_class``), time formatting for hovers and axes, date
axes (``time_axis``, ``axis_value``) with shaded bands and their labels drawn by us (``band``: plotly's own
``add_vrect`` labels do arithmetic on x), and the un-validated ``fast_figure`` the replay redraws many times a
second. Knows nothing about Streamlit or models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Qualitative palette (Plotly D3), indexed by regime label.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
HIGHLIGHT = "#e4007c"       # selected blocks on every chart
MISSING_COLOR = "#c8c8c8"
# Live, latency and health charts: the frozen registry, the online one, alerts, the current window, context.
FROZEN, ONLINE, ALERT, WINDOW, GREY = "#2563eb", "#ea580c", "#dc2626", "#f59e0b", "#6b7280"
WEBGL_THRESHOLD = 2000      # SVG scatter gets slow above this many points; use Scattergl
MAX_LINE_POINTS = 4000      # per trace; longer series are strided so a browser keeps up (replay, 1M-tick uploads)


def regime_color(label: int) -> str:
    """The palette colour of regime ``label`` (cycling past the palette's length)."""
    return PALETTE[int(label) % len(PALETTE)]


def stride(n: int, max_points: int = MAX_LINE_POINTS) -> int:
    """Keep every stride-th point so n points become at most ``max_points``: ceil(n / max_points), at least 1.

    >>> stride(10_000, 4000), stride(100, 4000)
    (3, 1)
    """
    return max(1, -(-int(n) // max(int(max_points), 1)))


def strided_ticks(n: int, step: int) -> np.ndarray:
    """Ticks 0, step, 2 * step, ... of a series of n ticks, always with the last tick n - 1."""
    return np.unique(np.append(np.arange(0, n, step), n - 1))


def scatter_class(n: int) -> type:
    """``go.Scattergl`` above ``WEBGL_THRESHOLD`` points, else ``go.Scatter``."""
    return go.Scattergl if n > WEBGL_THRESHOLD else go.Scatter


def fmt_time(v: Any) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM', anything else as ``str``."""
    if isinstance(v, (np.datetime64, pd.Timestamp)):
        return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
    return str(v)


def as_list(xs: np.ndarray) -> list:
    """Plain-list x values; datetime64 becomes ISO strings (``tolist`` would give nanosecond integers)."""
    xs = np.asarray(xs)
    return np.datetime_as_string(xs, unit="s").tolist() if np.issubdtype(xs.dtype, np.datetime64) else xs.tolist()


def is_time(xs: Any) -> bool:
    """Whether ``xs`` (an array or a scalar) holds datetimes, i.e. belongs on a date axis."""
    if isinstance(xs, (pd.Timestamp, np.datetime64)):
        return True
    return xs is not None and np.issubdtype(np.asarray(xs).dtype, np.datetime64)


def time_axis(times: np.ndarray | None, n: int) -> np.ndarray:
    """x values of n ticks: ``times`` (n,) when they are datetimes, else the tick numbers 0..n-1.

    Numeric ``times`` (a dataset without a timestamp column gives tick numbers) count as no timestamps.
    """
    if times is None or not is_time(times):
        return np.arange(n)
    t = np.asarray(times)
    if t.shape[0] != n:
        raise ValueError(f"times has {t.shape[0]} values but the series has {n} ticks")
    return t


def date_ms(times: np.ndarray) -> np.ndarray:
    """Datetimes (n,) as float64 milliseconds since the epoch: what a ``type="date"`` axis reads from numbers.

    A compact typed array instead of n ISO strings (~22 bytes each): the Timeline ships ~60k of them at 15k blocks.
    """
    return np.asarray(times).astype("datetime64[ms]").astype(np.int64).astype(np.float64)


def axis_value(v: Any) -> Any:
    """One x value as plotly takes it on any axis: a datetime as an ISO string (to the second), a number as a
    float. Shapes and annotations get these, never numpy datetimes (plotly.py does arithmetic on x when it
    places a shape's label itself, which fails or lands at the wrong place on a date axis)."""
    if is_time(v):
        return np.datetime_as_string(np.datetime64(pd.Timestamp(v).to_datetime64(), "s"), unit="s")
    return float(v)


def midpoint(x0: Any, x1: Any) -> Any:
    """The middle of [x0, x1] as an axis value, for datetimes too (computed on datetime64, not on strings)."""
    if is_time(x0):
        a, b = pd.Timestamp(x0).to_datetime64(), pd.Timestamp(x1).to_datetime64()
        return axis_value(a + (b - a) / 2)
    return (float(x0) + float(x1)) / 2


def band(x0: Any, x1: Any, colour: str, opacity: float, label: str | None = None, *, xref: str = "x",
         yref: str = "y", font_colour: str | None = None) -> tuple[dict, list[dict]]:
    """A full-height shaded band [x0, x1] as a raw layout shape and, with ``label``, its label centred over the
    band's middle at the top of the plot area: correct on number and on date axes alike.

    ``xref`` / ``yref`` name the subplot's axes ("x2", "y3"); the band spans that y axis's whole domain.
    """
    shape = dict(type="rect", xref=xref, yref=f"{yref} domain", x0=axis_value(x0), x1=axis_value(x1), y0=0, y1=1,
                 fillcolor=colour, opacity=opacity, line=dict(width=0), layer="below")
    ann = [dict(xref=xref, yref=f"{yref} domain", x=midpoint(x0, x1), y=1, text=label, showarrow=False,
                xanchor="center", yanchor="top", font=dict(size=11, color=font_colour or "#4b5563"))] if label else []
    return shape, ann


def add_band(fig: go.Figure, x0: Any, x1: Any, colour: str, opacity: float, label: str | None = None,
             **kw: Any) -> go.Figure:
    """``band`` added to a figure (one shape + its label); the replacement for ``add_vrect`` in these figures."""
    shape, ann = band(x0, x1, colour, opacity, label, **kw)
    fig.add_shape(shape)
    for a in ann:
        fig.add_annotation(a)
    return fig


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def plain_layout(fig: go.Figure, height: int, title: str | None = None, legend: bool = True) -> go.Figure:
    """Height, margins, title and a horizontal legend on top (the live, latency and health charts)."""
    # No plotly template: Streamlit's theme styles the chart, and applying a template costs ~30 ms per figure.
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=40 if title else 20, b=35), title=title,
                      showlegend=legend, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def fast_figure(data: list[dict], layout: dict, height: int, legend: bool = True) -> go.Figure:
    """A figure from plain dict traces / layout without plotly's per-property validation.

    The replay redraws these figures up to 20 times a second; validated construction costs 20-50 ms per
    figure on a busy 2-core machine, this ~2 ms. The tests rebuild every one of them with validation on
    (``go.Figure(fig.to_dict())``) so a typo still fails there. uirevision keeps the user's zoom across redraws.
    """
    base = dict(height=height, margin=dict(l=50, r=20, t=20, b=35), showlegend=legend, uirevision="keep",
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return go.Figure(dict(data=data, layout={**base, **layout}), _validate=False)


def hline(y: float, colour: str, text: str | None = None) -> tuple[dict, list[dict]]:
    """A full-width dashed line as a raw layout shape and its label (add_hline costs ~6 ms per call)."""
    shape = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                 line=dict(color=colour, dash="dash", width=1.5))
    ann = [dict(xref="paper", x=1, yref="y", y=y, text=text, showarrow=False, xanchor="right", yanchor="top",
                font=dict(color=colour, size=11))] if text else []
    return shape, ann
