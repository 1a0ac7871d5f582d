"""Figures of the Manifold page: the projection scatter, the price with picked blocks, the K sweep, clusters vs
ground truth and the neighbour windows.

``projection_figure`` draws the projected blocks (2-D / 3-D, categorical or continuous colour, picked blocks, live
points) as a short list of named steps; every point carries its block index in ``customdata`` so a selection
maps back to blocks (``blocks_from_selection``). Colours come from ``plots.style``. Knows nothing about
Streamlit, engines or datasets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
from scipy.ndimage import gaussian_filter

from .style import (
    HIGHLIGHT,
    MAX_LINE_POINTS,
    MISSING_COLOR,
    add_band,
    as_list,
    fmt_time,
    is_int,
    is_time,
    regime_color,
    scatter_class,
    stride,
    strided_ticks,
    time_axis,
)


def block_hover_text(table: pd.DataFrame, extra: dict[str, Sequence] | None = None) -> list[str]:
    """One hover string per block row of ``regimes.block_table`` (+ extra named columns, e.g. regime)."""
    extra = extra or {}
    out = []
    cols = {name: list(vals) for name, vals in extra.items()}
    for i, row in enumerate(table.itertuples(index=False)):
        parts = [f"<b>block {row.block}</b> · ticks {row.start}–{row.end - 1}",
                 f"{fmt_time(row.t_start)} → {fmt_time(row.t_end)}",
                 f"return {row.ret_pct:+.2f} % · vol {row.vol:.4g}"]
        tags = [f"{name} {vals[i]}" for name, vals in cols.items()]
        if "truth" in table.columns:
            tags.append(f"truth {row.truth}")
        if tags:
            parts.append(" · ".join(tags))
        out.append("<br>".join(parts))
    return out


def blocks_from_selection(selection: dict | None) -> list[int]:
    """Sorted unique block indices from a Streamlit plotly selection (points carry the block in customdata)."""
    if not selection:
        return []
    found = set()
    for p in selection.get("points", []) or []:
        cd = p.get("customdata")
        if cd is None:
            continue
        # customdata arrives as a scalar, a list, or (typed arrays decoded by the browser) a {"0": v} dict.
        v = cd[0] if isinstance(cd, (list, tuple)) else next(iter(cd.values()), None) if isinstance(cd, dict) else cd
        try:
            found.add(int(v))
        except (TypeError, ValueError):
            continue
    return sorted(found)


# Above this many blocks the projection gets density contours, points shrink to DENSE_MARKER px and
# carry no hover strings (hover names the block from customdata): 15,625 blocks stay readable and ~0.5 MB.
DENSE_POINTS = 5000
DENSE_MARKER = 3
DENSITY_BINS = 80


def projection_figure(coords: np.ndarray, color: np.ndarray, *, categorical: bool, color_title: str,
                      hover: Sequence[str] | None = None, selected: Sequence[int] = (), focus: int | None = None,
                      neighbours: Sequence[int] = (), live_xy: np.ndarray | None = None,
                      live_color: np.ndarray | None = None, title: str = "", height: int = 520) -> go.Figure:
    """Scatter of the projected blocks (N, 2|3) coloured by ``color`` (N,).

    categorical: one trace per value (legend entries "<color_title> v", palette colours); otherwise one trace with
    a Viridis colour bar (NaN values go to a grey "no value" trace). Selected blocks get an open ring, the focused
    block a star and its neighbours diamonds; live points (M, dim) are drawn as crosses. Above ``DENSE_POINTS``
    blocks (2-D) density contours are drawn over the points, which are small, WebGL, without hover strings.
    """
    pts = _Points(np.asarray(coords, dtype=np.float64), hover)
    fig = go.Figure()
    if categorical:
        _add_categories(fig, pts, np.asarray(color), color_title)
    else:
        _add_colour_scale(fig, pts, np.asarray(color), color_title)
    if pts.dense and pts.dim == 2:
        _add_density(fig, pts.coords)
    _add_picks(fig, pts, selected, neighbours, focus)
    if live_xy is not None and len(live_xy):
        _add_live_points(fig, np.asarray(live_xy, dtype=np.float64), live_color, pts.dim)
    if pts.dense:                          # 3 px markers would give 3 px legend symbols
        fig.update_layout(legend_itemsizing="constant")
    return _projection_layout(fig, pts.dim, title, height)


class _Points:
    """The projected blocks (N, dim) with one hover text each; ``add`` draws a subset as one marker trace."""

    def __init__(self, coords: np.ndarray, hover: Sequence[str] | None) -> None:
        self.coords, (self.n, self.dim) = coords, coords.shape
        self.dense = self.n > DENSE_POINTS
        # Dense: no per-point strings (they were ~85 % of the figure at 15k blocks); float32 coordinates and int32
        # block indices travel as compact typed arrays.
        self.hover = None if self.dense else (list(hover) if hover is not None else
                                             [f"block {i}" for i in range(self.n)])
        self.idx = np.arange(self.n, dtype=np.int32)

    def size(self, base: int) -> int:
        """Marker size: ``base`` px, or DENSE_MARKER (picks keep a visible ring: base - 4) above DENSE_POINTS."""
        return base if not self.dense else (DENSE_MARKER if base <= 7 else max(base - 4, DENSE_MARKER))

    def mask(self, blocks: Sequence[int]) -> np.ndarray:
        m = np.zeros(self.n, bool)
        m[np.asarray(blocks, dtype=np.int64)] = True
        return m

    def add(self, fig: go.Figure, mask: np.ndarray, name: str, marker: dict, showlegend: bool = True,
            hoverable: bool = True) -> None:
        """One trace of the masked blocks; every point carries its block index in ``customdata``."""
        sel, c = self.idx[mask], self.coords.astype(np.float32)
        if self.hover is None:
            text, tmpl = None, "block %{customdata}<extra>%{fullData.name}</extra>"
        else:
            text, tmpl = [self.hover[i] for i in sel], "%{text}<extra></extra>"
        if self.dim == 3:
            marker = _marker_3d(marker)
            fig.add_trace(go.Scatter3d(x=c[sel, 0], y=c[sel, 1], z=c[sel, 2], mode="markers", name=name,
                                       marker=marker, customdata=sel, text=text, hovertemplate=tmpl,
                                       showlegend=showlegend))
        else:
            fig.add_trace(scatter_class(self.n)(x=c[sel, 0], y=c[sel, 1], mode="markers", name=name, marker=marker,
                                                customdata=sel, text=text, hovertemplate=tmpl if hoverable else None,
                                                hoverinfo=None if hoverable else "skip", showlegend=showlegend))


def _marker_3d(marker: dict) -> dict:
    """A 2-D marker for Scatter3d: it knows fewer symbols (no star), hollow markers need the "-open" variants,
    and markers look larger in 3-D."""
    sym = {"star": "diamond", "diamond": "diamond-open"}.get(marker.get("symbol", "circle"),
                                                             marker.get("symbol", "circle"))
    if isinstance(marker.get("color"), str) and marker["color"] == "rgba(0,0,0,0)":   # colour arrays never are
        sym = sym if sym.endswith("-open") else "circle-open"
        marker = {**marker, "color": marker.get("line", {}).get("color", "black")}
    return {**marker, "symbol": sym, "size": max(2, marker.get("size", 6) - 3)}


def _add_categories(fig: go.Figure, pts: _Points, color: np.ndarray, title: str) -> None:
    """One trace per distinct value; integer values (regimes) take their palette colour."""
    for v in sorted(pd.unique(color).tolist()):
        pts.add(fig, color == v, f"{title} {v}", {"color": regime_color(v) if is_int(v) else None,
                                                 "size": pts.size(7), "opacity": 0.85})


def _add_colour_scale(fig: go.Figure, pts: _Points, color: np.ndarray, title: str) -> None:
    """Finite values on a Viridis colour bar; NaN values as a grey "no value" trace."""
    vals = color.astype(np.float64)
    missing = ~np.isfinite(vals)
    if missing.any():
        pts.add(fig, missing, "no value", {"color": MISSING_COLOR, "size": pts.size(6), "opacity": 0.6})
    pts.add(fig, ~missing, title, {"color": vals[~missing].astype(np.float32), "colorscale": "Viridis",
                                   "size": pts.size(7), "opacity": 0.9,
                                   "colorbar": {"title": {"text": title}, "thickness": 14}}, showlegend=False)


def _add_picks(fig: go.Figure, pts: _Points, selected: Sequence[int], neighbours: Sequence[int],
               focus: int | None) -> None:
    """Rings on the selected blocks, diamonds on the neighbours, a star on the focused block."""
    if len(selected):
        m = pts.mask(selected)
        pts.add(fig, m, f"selected ({int(m.sum())})", {"color": "rgba(0,0,0,0)", "size": pts.size(12),
                                                       "line": {"color": HIGHLIGHT, "width": 2}})
    if len(neighbours):
        pts.add(fig, pts.mask(neighbours), "neighbours", {"symbol": "diamond", "color": "rgba(0,0,0,0)", "size": 13,
                                                          "line": {"color": "black", "width": 2}})
    if focus is not None:
        pts.add(fig, pts.idx == int(focus), f"block {int(focus)}", {"symbol": "star", "color": HIGHLIGHT, "size": 18,
                                                                    "line": {"color": "black", "width": 1}})


def _add_density(fig: go.Figure, coords: np.ndarray, bins: int = DENSITY_BINS, levels: int = 6) -> None:
    """Density contours over the 2-D projection's points (under the picks): where 15k points overlap into solid
    colour, the lines still say where the blocks concentrate. Log counts of a bins x bins grid, smoothed, and
    contoured here; drawn as one WebGL line trace (an SVG contour would lie under the WebGL points)."""
    counts, xe, ye = np.histogram2d(coords[:, 0], coords[:, 1], bins=bins)           # (bins, bins): [x, y]
    z = gaussian_filter(np.log1p(counts.T), sigma=1.5)                                # rows are y
    xc, yc = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    top = float(z.max())
    parts = [_contour_segments(z, xc, yc, v) for v in np.linspace(0.15, 0.9, levels) * top] if top > 0 else []
    xy = np.concatenate(parts) if parts else np.zeros((0, 2))
    fig.add_trace(go.Scattergl(x=xy[:, 0].astype(np.float32), y=xy[:, 1].astype(np.float32), mode="lines",
                               name="density", showlegend=False, hoverinfo="skip", connectgaps=False,
                               line={"color": "rgba(30,30,30,0.55)", "width": 1}))


# Marching squares: for each 4-bit case of a cell's corners above the level (1 bottom-left, 2 bottom-right,
# 4 top-right, 8 top-left), the cell edges (0 bottom, 1 right, 2 top, 3 left) each contour segment joins.
_CASES = {1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((3, 0), (1, 2)), 6: ((0, 2),), 7: ((3, 2),),
          8: ((2, 3),), 9: ((0, 2),), 10: ((0, 1), (2, 3)), 11: ((1, 2),), 12: ((3, 1),), 13: ((0, 1),),
          14: ((3, 0),)}


def _contour_segments(z: np.ndarray, xc: np.ndarray, yc: np.ndarray, level: float) -> np.ndarray:
    """The iso-line z = level of a grid z (ny, nx) at centres xc (nx,), yc (ny,) as unjoined segments: rows of
    (x, y), three per segment (start, end, NaN gap), (3 * n_segments, 2)."""
    above = z > level
    case = (above[:-1, :-1] * 1 + above[:-1, 1:] * 2 + above[1:, 1:] * 4 + above[1:, :-1] * 8)   # (ny-1, nx-1)

    def edge(k: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The level's crossing on edge k of cells (i, j): linear interpolation between its two corners."""
        (i0, j0), (i1, j1) = {0: ((i, j), (i, j + 1)), 1: ((i, j + 1), (i + 1, j + 1)),
                              2: ((i + 1, j), (i + 1, j + 1)), 3: ((i, j), (i + 1, j))}[k]
        a, b = z[i0, j0], z[i1, j1]
        t = np.clip((level - a) / np.where(b != a, b - a, 1.0), 0.0, 1.0)
        return np.stack([xc[j0] + t * (xc[j1] - xc[j0]), yc[i0] + t * (yc[i1] - yc[i0])], axis=1)

    out = []
    for c, pairs in _CASES.items():
        i, j = np.nonzero(case == c)
        for e0, e1 in pairs:
            if len(i):
                seg = np.stack([edge(e0, i, j), edge(e1, i, j), np.full((len(i), 2), np.nan)], axis=1)
                out.append(seg.reshape(-1, 2))
    return np.concatenate(out) if out else np.zeros((0, 2))


def _add_live_points(fig: go.Figure, lx: np.ndarray, live_color: np.ndarray | None, dim: int) -> None:
    """Live windows (M, dim) as crosses, coloured by their confidence when given."""
    lc = None if live_color is None else np.asarray(live_color, dtype=np.float64)
    marker = {"symbol": "x", "size": 7, "color": "black" if lc is None else lc, "colorscale": "Viridis",
              "cmin": 0, "cmax": 1, "line": {"width": 0}}
    text = [f"live window {j}" + ("" if lc is None else f" · confidence {lc[j]:.2f}") for j in range(len(lx))]
    if dim == 3:
        fig.add_trace(go.Scatter3d(x=lx[:, 0], y=lx[:, 1], z=lx[:, 2], mode="markers", name="live windows",
                                   marker={**marker, "size": 3}, text=text, hovertemplate="%{text}<extra></extra>"))
    else:
        fig.add_trace(scatter_class(len(lx))(x=lx[:, 0], y=lx[:, 1], mode="markers", name="live windows",
                                             marker=marker, text=text, hovertemplate="%{text}<extra></extra>"))


def _projection_layout(fig: go.Figure, dim: int, title: str, height: int) -> go.Figure:
    """Lasso selection in 2-D (orbit in 3-D), a bare square plane, the user's view kept across reruns."""
    fig.update_layout(title=title or None, height=height, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      legend={"orientation": "h", "y": -0.05}, dragmode="lasso" if dim == 2 else "orbit",
                      uirevision="projection", plot_bgcolor="white")
    if dim == 2:
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, title=None)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, title=None, scaleanchor="x")
    return fig


def _block_segments(xs: np.ndarray, series: np.ndarray, starts: np.ndarray, block_len: int,
                    blocks: Sequence[int]) -> tuple[list, list]:
    """x, y of the given blocks only (one extra tick before each so it joins the line), None between blocks."""
    xs = np.asarray(xs)
    ox, oy = [], []
    for b in sorted(int(v) for v in blocks):
        s = int(starts[b])
        lo = max(s - 1, 0)
        ox.extend(as_list(xs[lo: s + block_len]))
        oy.extend(series[lo: s + block_len].tolist())
        ox.append(None)
        oy.append(None)
    return ox, oy


def price_figure(series: np.ndarray, starts: np.ndarray, block_len: int, *, x: np.ndarray | None = None,
                 highlight: Sequence[int] = (), focus: int | None = None, neighbours: Sequence[int] = (),
                 split: int | None = None, series_name: str = "price", height: int = 320,
                 max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """The series (T,) with the highlighted blocks drawn over it in the highlight colour.

    ``x``: (T,) timestamps (a date axis) or None / tick numbers (a tick axis). The focused block and its
    neighbours get shaded bands, the held-out span (from ``split``) a grey one; the labels sit over the middle of
    their band. The line is strided to about ``max_points`` points; highlighted blocks are drawn in full.
    """
    s = np.asarray(series, dtype=np.float64)
    t = s.shape[0]
    xs = time_axis(x, t)
    keep = strided_ticks(t, stride(t, max_points))
    fig = go.Figure()
    fig.add_trace(scatter_class(len(keep))(x=xs[keep], y=s[keep], mode="lines", name=series_name,
                                           line={"color": "#555", "width": 1}))
    if len(highlight):
        hx, hy = _block_segments(xs, s, starts, block_len, highlight)
        fig.add_trace(scatter_class(len(hx))(x=hx, y=hy, mode="lines", name=f"selected blocks ({len(highlight)})",
                                             line={"color": HIGHLIGHT, "width": 2.5}, connectgaps=False))

    def span(b: int) -> tuple:
        st_ = int(starts[int(b)])
        return xs[st_], xs[min(st_ + block_len - 1, t - 1)]

    for b in neighbours:
        add_band(fig, *span(b), "#ff7f0e", 0.18)
    if focus is not None:
        add_band(fig, *span(focus), HIGHLIGHT, 0.3, f"block {int(focus)}", font_colour=HIGHLIGHT)
    if split is not None and 0 < split < t:
        add_band(fig, xs[split], xs[-1], "grey", 0.12, "held out")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "y": 1.12}, yaxis_title=series_name, plot_bgcolor="white",
                      hovermode="x")
    fig.update_xaxes(showgrid=True, gridcolor="#eee", type="date" if is_time(xs) else None)
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


def sweep_figure(scores: dict[int, float], chosen: int, criterion: str, height: int = 260) -> go.Figure:
    """Score of each K in the sweep, the chosen K highlighted."""
    ks = sorted(scores)
    ys = [scores[k] for k in ks]
    better = "higher is better" if criterion == "silhouette" else "lower is better"
    fig = go.Figure(go.Scatter(x=ks, y=ys, mode="lines+markers", name=criterion, line={"color": "#555"}))
    if chosen in scores:
        fig.add_trace(go.Scatter(x=[chosen], y=[scores[chosen]], mode="markers", name=f"chosen K={chosen}",
                                 marker={"color": HIGHLIGHT, "size": 14, "symbol": "star"}))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      title={"text": f"{criterion} by K ({better})", "font": {"size": 13}},
                      xaxis={"title": "K", "dtick": 1}, plot_bgcolor="white")
    return fig


def contingency_figure(labels: np.ndarray, truth: np.ndarray, height: int = 260) -> go.Figure:
    """Counts of blocks per (cluster, ground-truth label)."""
    ct = pd.crosstab(pd.Series(np.asarray(labels), name="cluster"), pd.Series(np.asarray(truth), name="truth"))
    fig = go.Figure(go.Heatmap(z=ct.to_numpy(), x=[f"truth {c}" for c in ct.columns],
                               y=[f"regime {r}" for r in ct.index], colorscale="Blues", showscale=False,
                               text=ct.to_numpy(), texttemplate="%{text}",
                               hovertemplate="%{y} · %{x}: %{z} blocks<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title={"text": "clusters vs ground truth (blocks)", "font": {"size": 13}})
    return fig


def neighbour_windows_figure(series: np.ndarray, starts: np.ndarray, block_len: int, index: int,
                             neighbours: Sequence[int], sims: Sequence[float], height: int = 300) -> go.Figure:
    """The chosen block's window and its neighbours' windows, each as % change from its first tick."""
    s = np.asarray(series, dtype=np.float64)
    off = np.arange(block_len)
    fig = go.Figure()

    def rel(b: int) -> np.ndarray:
        w = s[int(starts[b]): int(starts[b]) + block_len]
        return (w / w[0] - 1.0) * 100.0 if w[0] > 0 and (w > 0).all() else w - w[0]

    for b, sim in zip(neighbours, sims):
        c = pc.sample_colorscale("Viridis", [float(np.clip((sim + 1) / 2, 0, 1))])[0]
        fig.add_trace(go.Scatter(x=off, y=rel(int(b)), mode="lines", name=f"block {int(b)} (cos {sim:.3f})",
                                 line={"color": c, "width": 1.5}))
    fig.add_trace(go.Scatter(x=off, y=rel(int(index)), mode="lines", name=f"block {int(index)} (chosen)",
                             line={"color": HIGHLIGHT, "width": 3.5}))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white",
                      xaxis_title="tick within block", yaxis_title="change from block start",
                      title={"text": f"block {int(index)} and its {len(neighbours)} nearest neighbours",
                             "font": {"size": 13}})
    return fig
