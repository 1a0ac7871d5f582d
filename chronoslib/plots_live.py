"""Figure builders for the Live replay, Latency and Diagnostics pages: pure functions, data in, plotly out.

Replay (redrawn many times a second, so each figure is small and has fixed axis ranges that do not jump):
``gauges`` (regime confidence / alpha as ``go.Indicator``), ``price_window`` (the replayed series with the
current window), ``rolling_confidence`` (with the re-fit threshold and alerts), ``neighbour_marks`` (where in
the training span the retrieved neighbours lie). Latency: ``latency_histogram``, ``stage_breakdown``,
``spec_comparison``. Diagnostics: ``collapse_figure``, ``similarity_histogram``, ``drift_figure``.
Knows nothing about Streamlit or models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .metrics import COLLAPSE_EFF_RANK, COLLAPSE_MEAN_COS, COLLAPSING_EFF_RANK, COLLAPSING_MEAN_COS

FROZEN, ONLINE, ALERT, WINDOW, GREY = "#2563eb", "#ea580c", "#dc2626", "#f59e0b", "#6b7280"
REGIME_COLOURS = ("#2563eb", "#16a34a", "#dc2626", "#7c3aed", "#ea580c", "#0891b2", "#db2777", "#65a30d")
MAX_LINE_POINTS = 4000  # per trace; longer series are strided so the browser keeps up during replay
STAGES = ("encode", "query", "spd", "predictor")


def _layout(fig: go.Figure, height: int, title: str | None = None, legend: bool = True) -> go.Figure:
    # No plotly template: Streamlit's theme styles the chart, and applying a template costs ~30 ms per figure.
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=40 if title else 20, b=35), title=title,
                      showlegend=legend, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def _fast_figure(data: list[dict], layout: dict, height: int, legend: bool = True) -> go.Figure:
    """A figure from plain dict traces / layout without plotly's per-property validation.

    The replay redraws these figures up to 20 times a second; validated construction costs 20-50 ms per
    figure on a busy 2-core machine, this ~2 ms. The tests rebuild every one of them with validation on
    (``go.Figure(fig.to_dict())``) so a typo still fails there. uirevision keeps the user's zoom across redraws.
    """
    base = dict(height=height, margin=dict(l=50, r=20, t=20, b=35), showlegend=legend, uirevision="keep",
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return go.Figure(dict(data=data, layout={**base, **layout}), _validate=False)


def _hline(y: float, colour: str, text: str | None = None) -> tuple[dict, list[dict]]:
    """A full-width dashed line as a raw layout shape and its label (add_hline costs ~6 ms per call)."""
    shape = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                 line=dict(color=colour, dash="dash", width=1.5))
    ann = [dict(xref="paper", x=1, yref="y", y=y, text=text, showarrow=False, xanchor="right", yanchor="top",
                font=dict(color=colour, size=11))] if text else []
    return shape, ann


def _stride(n: int, max_points: int = MAX_LINE_POINTS) -> int:
    return max(1, -(-n // max(int(max_points), 1)))


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
    return _fast_figure(data, dict(margin=dict(l=25, r=25, t=40, b=10)), height, legend=False)


def price_window(series: np.ndarray, start: int | None, length: int, tick0: int = 0, label: str = "price",
                 height: int = 260, max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """The replayed series (T,) against absolute tick, with the current window [start, start + length)
    (relative ticks) highlighted and shaded; ``start=None`` before the first step. The full line is strided
    to at most ``max_points`` points; the window is always drawn at full resolution."""
    y = np.asarray(series, dtype=np.float64)
    s = _stride(len(y), max_points)
    x = tick0 + np.arange(len(y))
    data = [dict(type="scatter", x=x[::s], y=y[::s], mode="lines", name=label, line=dict(color=GREY, width=1.2),
                 hoverinfo="skip")]
    shapes = []
    if start is not None:
        a, b = int(start), int(min(start + length, len(y)))
        data.append(dict(type="scatter", x=x[a:b], y=y[a:b], mode="lines", name="current window",
                         line=dict(color=WINDOW, width=2.5)))
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=tick0 + a, x1=tick0 + b - 1, y0=0, y1=1,
                           fillcolor=WINDOW, opacity=0.15, line=dict(width=0)))
    layout: dict = dict(shapes=shapes, xaxis=dict(range=[tick0, tick0 + max(len(y) - 1, 1)], title=dict(text="tick")))
    if len(y):
        pad = 0.03 * (np.nanmax(y) - np.nanmin(y) + 1e-9)
        layout["yaxis"] = dict(range=[float(np.nanmin(y) - pad), float(np.nanmax(y) + pad)], title=dict(text=label))
    return _fast_figure(data, layout, height)


def rolling_confidence(ticks: np.ndarray, confidence: np.ndarray, threshold: float,
                       alerts: np.ndarray | None = None, online: np.ndarray | None = None,
                       x_range: tuple[float, float] | None = None, height: int = 250) -> go.Figure:
    """Confidence per replayed window against its tick, the re-fit threshold as a dashed line, windows in a
    low-confidence alert as red markers, and the online registry's confidence when given."""
    t = np.asarray(ticks, dtype=np.float64)
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
    shape, ann = _hline(threshold, ALERT, f"re-fit threshold {threshold:.2f}")
    lo = float(min(threshold, np.nanmin(c) if c.size else threshold)) - 0.05
    layout = dict(shapes=[shape], annotations=ann, yaxis=dict(range=[max(0.0, lo), 1.0], title=dict(text="confidence")),
                  xaxis=dict(title=dict(text="tick"), **({"range": list(x_range)} if x_range else {})))
    return _fast_figure(data, layout, height)


def replay_panel(series: np.ndarray, start: int | None, length: int, tick0: int, ticks: np.ndarray,
                 confidence: np.ndarray, threshold: float, alerts: np.ndarray | None = None,
                 online: np.ndarray | None = None, label: str = "price", height: int = 430,
                 max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """``price_window`` above ``rolling_confidence`` on one shared tick axis, as a single figure: one chart
    for the browser to redraw per frame instead of two, and the window lines up with its confidence."""
    top, bottom = price_window(series, start, length, tick0, label, max_points=max_points), rolling_confidence(
        ticks, confidence, threshold, alerts, online)
    data = [t.to_plotly_json() for t in top.data]
    for t in bottom.data:
        data.append({**t.to_plotly_json(), "xaxis": "x", "yaxis": "y2"})
    n = len(series)
    x_range = [tick0, tick0 + max(n - 1, 1)]
    shapes = [dict(sh.to_plotly_json(), yref="y domain" if sh.yref == "paper" else sh.yref) for sh in top.layout.shapes]
    shapes += [dict(sh.to_plotly_json(), yref="y2") for sh in bottom.layout.shapes]
    anns = [dict(a.to_plotly_json(), yref="y2") for a in bottom.layout.annotations]
    layout = dict(shapes=shapes, annotations=anns,
                  xaxis=dict(range=x_range, anchor="y2", title=dict(text="tick")),
                  yaxis=dict(domain=[0.45, 1.0], title=dict(text=label), range=top.layout.yaxis.range),
                  yaxis2=dict(domain=[0.0, 0.36], title=dict(text="confidence"), range=bottom.layout.yaxis.range))
    return _fast_figure(data, layout, height)


def neighbour_marker_trace(series: np.ndarray, block_starts: np.ndarray, block_len: int, ids: Sequence[int],
                           weights: Sequence[float], regimes: np.ndarray | None = None) -> dict:
    """The marker trace of ``neighbour_marks`` as a plain dict (x, y, size, colour, hover text), so a live
    player can swap it per window. Live-appended neighbours (id -1) have no training block and are left out."""
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
    colours = [REGIME_COLOURS[int(regimes[i]) % len(REGIME_COLOURS)] if regimes is not None else FROZEN
               for i in ids_ok]
    text = [f"block {i}" + (f" · regime {int(regimes[i])}" if regimes is not None else "") + f" · w={ww:.3f}"
            for i, ww in zip(ids_ok, w_ok)]
    return dict(type="scatter", x=mid.tolist(), y=y[mid].tolist(), mode="markers", name="neighbours", text=text,
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=(8 + 60 * w_ok).tolist(), color=colours, opacity=0.85,
                            line=dict(color="white", width=1)))


def neighbour_marks(series: np.ndarray, block_starts: np.ndarray, block_len: int, ids: Sequence[int],
                    weights: Sequence[float], regimes: np.ndarray | None = None, label: str = "price",
                    height: int = 230, max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """The training series (T,) with the retrieved neighbour blocks marked at their mid-point: marker size
    grows with the SPD weight, colour is the block's regime (when given). The line is strided to at most
    ``max_points`` points (markers sit on the full-resolution series)."""
    y = np.asarray(series, dtype=np.float64)
    s = _stride(len(y), max_points)
    data = [dict(type="scatter", x=np.arange(len(y))[::s], y=y[::s], mode="lines", name=label,
                 line=dict(color="#9ca3af", width=1), hoverinfo="skip"),
            neighbour_marker_trace(y, block_starts, block_len, ids, weights, regimes)]
    layout = dict(xaxis=dict(range=[0, max(len(y) - 1, 1)], title=dict(text="training tick")),
                  yaxis=dict(title=dict(text=label)))
    return _fast_figure(data, layout, height, legend=False)


# ---------------------------------------------------------------------- latency
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
    return _layout(fig, height, title, legend=False)


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
    return _layout(fig, height, title, legend=False)


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
    _layout(fig, height)
    return fig.update_layout(margin=dict(t=70), legend=dict(y=1.18))


# ---------------------------------------------------------------------- collapse
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
    _layout(fig, height)
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
    return _layout(fig, height, legend=False)


# ---------------------------------------------------------------------- drift
def drift_figure(ticks: np.ndarray, timeline: dict[str, np.ndarray], confidence: np.ndarray,
                 neighbour_age: np.ndarray, refit_threshold: float, height: int = 620) -> go.Figure:
    """Four stacked panels against tick: centroid distance and MMD^2 of the trailing window (with their
    thresholds; drifting windows red), mean age of retrieved neighbours, and confidence with the re-fit
    threshold. ``ticks`` (M,) per window; ``timeline`` from drift.drift_timeline over the same windows."""
    t = np.asarray(ticks, dtype=np.float64)
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
        if drift.any():
            fig.add_trace(go.Scatter(x=te[drift], y=y[drift], mode="markers", marker=dict(color=ALERT, size=7),
                                     name="drift", showlegend=row == 1), row=row, col=1)
    age = np.nanmean(np.asarray(neighbour_age, dtype=np.float64), axis=1)
    fig.add_trace(go.Scatter(x=t, y=age, mode="lines", line=dict(color="#0f766e"), showlegend=False), row=3, col=1)
    fig.add_trace(go.Scatter(x=t, y=confidence, mode="lines", line=dict(color=FROZEN), showlegend=False),
                  row=4, col=1)
    fig.add_hline(y=refit_threshold, line=dict(color=ALERT, dash="dash"), row=4, col=1)
    fig.update_xaxes(title_text="tick", row=4, col=1)
    return _layout(fig, height)
