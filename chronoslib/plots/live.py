"""Figures of the Live replay page, redrawn many times a second: each is small, built as plain dicts
(``style.fast_figure``) and has fixed axis ranges that do not jump.

``gauges`` (regime confidence / alpha as ``go.Indicator``), ``price_window`` (the replayed series with the current
window), ``rolling_confidence`` (with the re-fit threshold and alerts), ``replay_panel`` (both on one tick axis),
``neighbour_marks`` / ``neighbour_marker_trace`` (where in the training span the retrieved neighbours lie, in
their regime's colour from the one palette, ``style.regime_color``). Knows nothing about Streamlit or models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .style import (
    ALERT,
    FROZEN,
    GREY,
    MAX_LINE_POINTS,
    ONLINE,
    WINDOW,
    date_ms,
    fast_figure,
    hline,
    is_time,
    regime_color,
    stride,
)


def _num(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _gauge(value: float | None, title: str, rng: tuple[float, float], threshold: float | None, colour: str,
           fmt: str, domain: dict) -> dict:
    gauge: dict = dict(axis=dict(range=list(rng)), bar=dict(color=colour, thickness=0.35))
    if threshold is not None:
        gauge["steps"] = [dict(range=[rng[0], threshold], color="#fee2e2"),
                          dict(range=[threshold, rng[1]], color="#ecfdf5")]
        gauge["threshold"] = dict(line=dict(color=ALERT, width=3), thickness=0.9, value=threshold)
    return dict(type="indicator", mode="gauge+number", value=_num(value), domain=domain, gauge=gauge,
                number=dict(valueformat=fmt, font=dict(size=30)), title=dict(text=title, font=dict(size=14)))


def gauges(confidence: float | None, alpha: float | None, threshold: float, alpha_range: float = 1.0,
           online_confidence: float | None = None, height: int = 210) -> go.Figure:
    """Regime-confidence gauge (0..1, re-fit threshold marked and the zone below it red), an alpha gauge
    (-alpha_range..alpha_range, value clipped into it) and, when given, the online-registry confidence gauge.

    >>> [t.title.text for t in gauges(0.8, 0.1, 0.6).data]
    ['Regime confidence', 'Alpha (latent forecast)']
    """
    if alpha_range <= 0:
        raise ValueError(f"alpha_range must be > 0, got {alpha_range}")
    items = [("Regime confidence", confidence, (0.0, 1.0), threshold, FROZEN, ".1%")]
    if online_confidence is not None:
        items.append(("Confidence (online registry)", online_confidence, (0.0, 1.0), threshold, ONLINE, ".1%"))
    a = None if alpha is None or not np.isfinite(alpha) else float(np.clip(alpha, -alpha_range, alpha_range))
    items.append(("Alpha (latent forecast)", a, (-alpha_range, alpha_range), None, "#0f766e", "+.3f"))
    n = len(items)
    data = [_gauge(v, t, r, th, c, f, dict(x=[i / n + 0.04, (i + 1) / n - 0.04], y=[0, 1]))
            for i, (t, v, r, th, c, f) in enumerate(items)]
    return fast_figure(data, dict(margin=dict(l=25, r=25, t=40, b=10)), height, legend=False)


def _tick_x(n: int, tick0: int, times: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """x of n replayed ticks: ms since the epoch of ``times`` (n,) on a date axis, else absolute ticks; and
    whether it is a date axis. Numbers on both, so the player can move the window with plain arithmetic."""
    if times is None or not is_time(times):
        return tick0 + np.arange(n), False
    if len(times) != n:
        raise ValueError(f"times has {len(times)} values but the series has {n} ticks")
    return date_ms(times), True


def _x_axis(x: np.ndarray, dated: bool, title: str, **kw: object) -> dict:
    # A date axis needs no title (its two-line date labels would run into it).
    return dict(range=[float(x[0]), float(x[-1]) if len(x) > 1 else float(x[0]) + 1], type="date" if dated else
                "linear", title=dict(text=None if dated else title), **kw) if len(x) else dict(title=dict(text=title))


def price_window(series: np.ndarray, start: int | None, length: int, tick0: int = 0, label: str = "price",
                 height: int = 260, max_points: int = MAX_LINE_POINTS, times: np.ndarray | None = None) -> go.Figure:
    """The replayed series (T,) against absolute tick (or ``times`` (T,): a date axis), with the current window
    [start, start + length) (relative ticks) highlighted and shaded; ``start=None`` before the first step. The
    full line is strided to at most ``max_points`` points; the window is always drawn at full resolution."""
    y = np.asarray(series, dtype=np.float64)
    s = stride(len(y), max_points)
    x, dated = _tick_x(len(y), tick0, times)
    data = [dict(type="scatter", x=x[::s], y=y[::s], mode="lines", name=label, line=dict(color=GREY, width=1.2),
                 hoverinfo="skip")]
    shapes = []
    if start is not None:
        a, b = int(start), int(min(start + length, len(y)))
        data.append(dict(type="scatter", x=x[a:b], y=y[a:b], mode="lines", name="current window",
                         line=dict(color=WINDOW, width=2.5)))
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=float(x[a]), x1=float(x[b - 1]), y0=0, y1=1,
                           fillcolor=WINDOW, opacity=0.15, line=dict(width=0)))
    layout: dict = dict(shapes=shapes, xaxis=_x_axis(x, dated, "tick"))
    if len(y):
        pad = 0.03 * (np.nanmax(y) - np.nanmin(y) + 1e-9)
        layout["yaxis"] = dict(range=[float(np.nanmin(y) - pad), float(np.nanmax(y) + pad)], title=dict(text=label))
    return fast_figure(data, layout, height)


def rolling_confidence(ticks: np.ndarray, confidence: np.ndarray, threshold: float,
                       alerts: np.ndarray | None = None, online: np.ndarray | None = None,
                       x_range: tuple[float, float] | None = None, height: int = 250,
                       times: np.ndarray | None = None) -> go.Figure:
    """Confidence per replayed window against its tick (or its ``times`` (M,): a date axis), the re-fit threshold
    as a dashed line, windows in a low-confidence alert as red markers, and the online registry's confidence."""
    dated = times is not None and is_time(times)
    t = date_ms(times) if dated else np.asarray(ticks, dtype=np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    if t.shape != c.shape:
        raise ValueError(f"ticks {t.shape} and confidence {c.shape} must have the same shape")
    data = [dict(type="scatter", x=t, y=c, mode="lines", name="frozen registry", line=dict(color=FROZEN, width=1.8))]
    if online is not None:
        data.append(dict(type="scatter", x=t, y=np.asarray(online, dtype=np.float64), mode="lines",
                         name="online registry", line=dict(color=ONLINE, width=1.5)))
    if alerts is not None:  # always present (maybe empty) so a live player can append to it
        al = np.asarray(alerts, dtype=bool)
        if al.shape != c.shape:
            raise ValueError(f"alerts {al.shape} and confidence {c.shape} must have the same shape")
        data.append(dict(type="scatter", x=t[al], y=c[al], mode="markers", name="re-fit alert",
                         marker=dict(color=ALERT, size=6, symbol="x"), showlegend=bool(al.any())))
    shape, ann = hline(threshold, ALERT, f"re-fit threshold {threshold:.2f}")
    lo = float(min(threshold, np.nanmin(c) if c.size else threshold)) - 0.05
    layout = dict(shapes=[shape], annotations=ann, yaxis=dict(range=[max(0.0, lo), 1.0], title=dict(text="confidence")),
                  xaxis=dict(title=dict(text=None if dated else "tick"), type="date" if dated else "linear",
                             **({"range": list(x_range)} if x_range else {})))
    return fast_figure(data, layout, height)


def replay_panel(series: np.ndarray, start: int | None, length: int, tick0: int, ticks: np.ndarray,
                 confidence: np.ndarray, threshold: float, alerts: np.ndarray | None = None,
                 online: np.ndarray | None = None, label: str = "price", height: int = 430,
                 max_points: int = MAX_LINE_POINTS, times: np.ndarray | None = None) -> go.Figure:
    """``price_window`` above ``rolling_confidence`` on one shared tick axis (a date axis with ``times`` (T,)
    per replayed tick), as a single figure: one chart for the browser to redraw per frame instead of two, and
    the window lines up with its confidence."""
    dated = times is not None and is_time(times)
    win_times = np.asarray(times)[np.asarray(ticks, dtype=np.int64) - tick0] if dated else None
    top, bottom = price_window(series, start, length, tick0, label, max_points=max_points,
                               times=times if dated else None), rolling_confidence(
        ticks, confidence, threshold, alerts, online, times=win_times)
    data = [t.to_plotly_json() for t in top.data]
    for t in bottom.data:
        data.append({**t.to_plotly_json(), "xaxis": "x", "yaxis": "y2"})
    shapes = [dict(sh.to_plotly_json(), yref="y domain" if sh.yref == "paper" else sh.yref) for sh in top.layout.shapes]
    shapes += [dict(sh.to_plotly_json(), yref="y2") for sh in bottom.layout.shapes]
    anns = [dict(a.to_plotly_json(), yref="y2") for a in bottom.layout.annotations]
    layout = dict(shapes=shapes, annotations=anns, xaxis={**top.layout.xaxis.to_plotly_json(), "anchor": "y2"},
                  yaxis=dict(domain=[0.45, 1.0], title=dict(text=label), range=top.layout.yaxis.range),
                  yaxis2=dict(domain=[0.0, 0.36], title=dict(text="confidence"), range=bottom.layout.yaxis.range))
    return fast_figure(data, layout, height)


def neighbour_marker_trace(series: np.ndarray, block_starts: np.ndarray, block_len: int, ids: Sequence[int],
                           weights: Sequence[float], regimes: np.ndarray | None = None,
                           times: np.ndarray | None = None) -> dict:
    """The marker trace of ``neighbour_marks`` as a plain dict (x, y, size, colour, hover text), so a live
    player can swap it per window. Live-appended neighbours (id -1) have no training block and are left out.
    ``times`` (T,) per training tick: x is the neighbour's mid time (ms since the epoch, for a date axis)."""
    y = np.asarray(series, dtype=np.float64)
    ids_a, w = np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    if ids_a.shape != w.shape:
        raise ValueError(f"ids {ids_a.shape} and weights {w.shape} must have the same shape")
    starts = np.asarray(block_starts, dtype=np.int64)
    ok = (ids_a >= 0) & (ids_a < len(starts))
    if len(y):
        mid = np.clip(starts[ids_a[ok]] + block_len // 2, 0, len(y) - 1)
    else:
        mid, ok = np.zeros(0, dtype=np.int64), np.zeros_like(ok)
    ids_ok, w_ok = ids_a[ok], w[ok]
    colours = [regime_color(regimes[i]) if regimes is not None else FROZEN
               for i in ids_ok]
    text = [f"block {i}" + (f" · regime {int(regimes[i])}" if regimes is not None else "") + f" · w={ww:.3f}"
            for i, ww in zip(ids_ok, w_ok)]
    x = date_ms(np.asarray(times)[mid]).tolist() if times is not None and is_time(times) else mid.tolist()
    return dict(type="scatter", x=x, y=y[mid].tolist(), mode="markers", name="neighbours", text=text,
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=(8 + 60 * w_ok).tolist(), color=colours, opacity=0.85,
                            line=dict(color="white", width=1)))


def neighbour_marks(series: np.ndarray, block_starts: np.ndarray, block_len: int, ids: Sequence[int],
                    weights: Sequence[float], regimes: np.ndarray | None = None, label: str = "price",
                    height: int = 230, max_points: int = MAX_LINE_POINTS,
                    times: np.ndarray | None = None) -> go.Figure:
    """The training series (T,) with the retrieved neighbour blocks marked at their mid-point: marker size
    grows with the SPD weight, colour is the block's regime (when given). The line is strided to at most
    ``max_points`` points (markers sit on the full-resolution series). ``times`` (T,): a date axis."""
    y = np.asarray(series, dtype=np.float64)
    s = stride(len(y), max_points)
    x, dated = _tick_x(len(y), 0, times)
    data = [dict(type="scatter", x=x[::s], y=y[::s], mode="lines", name=label,
                 line=dict(color="#9ca3af", width=1), hoverinfo="skip"),
            neighbour_marker_trace(y, block_starts, block_len, ids, weights, regimes, times if dated else None)]
    layout = dict(xaxis=_x_axis(x, dated, "training tick"), yaxis=dict(title=dict(text=label)))
    return fast_figure(data, layout, height, legend=False)
