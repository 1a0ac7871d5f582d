"""Figures of the Timeline page: the series in chronological vs pseudo-timeline order, cosine-similarity
heatmaps in both orders, the animated walk along the pseudo-timeline, and the orderings compared (optimality gap,
regime switches: ``ordering_figure``).

Every block keeps its regime's colour from ``plots.style`` (the same as on the Manifold and Live replay pages).
Long series are thinned with ``style.stride`` without moving block edges. Knows nothing about Streamlit, engines or
datasets.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import ConfigError
from ..metrics import mean_run_length
from ..numeric_checks import unit_latents
from .style import (
    HIGHLIGHT,
    WEBGL_THRESHOLD,
    as_list,
    date_ms,
    fmt_time,
    is_int,
    is_time,
    regime_color,
    scatter_class,
    stride,
    strided_ticks,
)


def _returns(series: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per-tick increments (T,) with r[0] = 0: log returns when the series is positive, else differences."""
    s = np.asarray(series, dtype=np.float64)
    log = bool((s > 0).all())
    v = np.log(s) if log else s
    return np.concatenate([[0.0], np.diff(v)]), log


def stitched_series(series: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray) -> np.ndarray:
    """The series rebuilt from its blocks' own increments taken in ``order``: (len(order) * block_len,).

    Block b contributes the increments of ticks starts[b]..starts[b]+L-1 (its entry jump included), so the
    chronological order reproduces the original series exactly.
    """
    s = np.asarray(series, dtype=np.float64)
    r, log = _returns(s)
    ticks = np.asarray(starts, dtype=np.int64)[np.asarray(order)][:, None] + np.arange(block_len)[None, :]  # (N, L)
    first = s[int(np.asarray(starts)[np.asarray(order)[0]])]
    inc = r[ticks].ravel()
    inc[0] = 0.0
    path = np.cumsum(inc)
    return first * np.exp(path) if log else first + path


def block_offsets(block_len: int, n_blocks: int, max_points: int = 1500) -> np.ndarray:
    """Tick offsets drawn inside each block so a panel has <= ~max_points points (the first and last of each block;
    only the last once even two per block exceed max_points: at 13k blocks a pixel column holds several blocks,
    and half the points halve what the browser parses and draws).

    Keeps line charts of long series in plain SVG (no WebGL context, light JSON) without moving block edges.
    """
    if 2 * n_blocks > max_points and block_len > 1:
        return np.array([block_len - 1])
    return strided_ticks(block_len, stride(n_blocks * block_len, max_points))


def _segments(values: np.ndarray, slot_labels: np.ndarray, block_len: int, label: int,
              offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slot ticks, y and a gap mask of every block slot with this label (at ``offsets`` within each block), one
    joining tick before each run and a NaN gap after it (the gap repeats the run's last tick; ``gap`` marks it)."""
    offsets = np.arange(block_len) if offsets is None else np.asarray(offsets)
    is_lab = np.asarray(slot_labels) == label
    # Runs of consecutive slots with this label: [p, q] inclusive.
    edges = np.diff(np.concatenate([[0], is_lab.astype(np.int8), [0]]))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    xs, ys, gaps = [], [], []
    for p, q in zip(run_starts, run_ends):
        ticks = (np.arange(p, q + 1)[:, None] * block_len + offsets[None, :]).ravel()
        if p > 0:
            ticks = np.concatenate([[p * block_len - 1], ticks])
        xs.extend([ticks, ticks[-1:]])
        ys.extend([values[ticks], [np.nan]])
        gaps.extend([np.zeros(len(ticks), bool), [True]])
    if not xs:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gaps)


def _slot_x(slot_ticks: np.ndarray, gap: np.ndarray, starts: np.ndarray, block_len: int,
            times: np.ndarray | None) -> np.ndarray:
    """x of slot ticks: the slot tick itself (gaps half a tick on), or, on the chronological panel with
    ``times``, the real time of the tick as ms since the epoch (a compact float array on a date axis)."""
    if times is None:
        exact32 = len(slot_ticks) and slot_ticks.max() < 2 ** 23        # float32 holds these ticks + 0.5 exactly
        return np.where(gap, slot_ticks + 0.5, slot_ticks).astype(np.float32 if exact32 else np.float64)
    real = starts[slot_ticks // block_len] + slot_ticks % block_len                   # chronological slot -> tick
    return date_ms(times[real])


def timeline_figure(series: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray, labels: np.ndarray,
                    *, layout: str = "stacked", label_name: str = "regime", series_name: str = "price",
                    times: np.ndarray | None = None, height: int = 620) -> go.Figure:
    """The same series in chronological order and in pseudo-timeline order, each block coloured by its label.

    Without ``times`` x is the tick slot (block position x block_len + offset) in both panels, and the axes are
    linked, so the chronological panel's scattered regimes line up against the pseudo-timeline's contiguous runs.
    ``times`` (T,) datetimes per tick put the chronological panel on a date axis (the pseudo-timeline keeps its
    slot axis: its order is not time). Each panel has a barcode strip underneath: one cell per block slot in the
    label's colour.
    """
    starts = np.asarray(starts, dtype=np.int64)
    labels = np.asarray(labels)
    times = np.asarray(times) if times is not None and is_time(times) else None
    orders = {"chrono": np.arange(len(starts)), "pseudo": np.asarray(order, dtype=np.int64)}
    titles = (f"Chronological order · mean run {mean_run_length(labels):.1f} blocks",
              f"Pseudo-timeline (defragmented) · mean run {mean_run_length(labels[orders['pseudo']]):.1f} blocks")
    fig, cells = _timeline_grid(layout, titles, shared_x=times is None)
    offs = block_offsets(block_len, len(starts))
    scale = _label_scale(labels)
    for panel, ordr in orders.items():
        line_cell, barcode_cell = cells[panel]
        panel_times = times if panel == "chrono" else None
        _add_coloured_series(fig, stitched_series(series, starts, block_len, ordr), labels[ordr], block_len, offs,
                             label_name, panel == "chrono", line_cell, starts, panel_times)
        _add_barcode(fig, ordr, labels[ordr], block_len, f"{panel} barcode", label_name, barcode_cell, scale,
                     starts, panel_times)
    return _timeline_layout(fig, layout, block_len, series_name, height, cells, times is not None)


def _timeline_grid(layout: str, titles: tuple[str, str], shared_x: bool) -> tuple[go.Figure, dict]:
    """Subplots for both panels and, per panel, the (row, col) of its series and of its barcode strip."""
    if layout == "side":
        fig = make_subplots(rows=2, cols=2, shared_xaxes=shared_x, shared_yaxes=True, row_heights=[0.85, 0.15],
                            vertical_spacing=0.03, horizontal_spacing=0.03, subplot_titles=titles)
        return fig, {"chrono": ((1, 1), (2, 1)), "pseudo": ((1, 2), (2, 2))}
    if layout == "stacked":
        # With dates the chronological barcode carries its own date labels: room for them above the next title.
        fig = make_subplots(rows=4, cols=1, shared_xaxes=shared_x, row_heights=[0.4, 0.08, 0.4, 0.08],
                            vertical_spacing=0.04 if shared_x else 0.09,
                            subplot_titles=(titles[0], None, titles[1], None))
        return fig, {"chrono": ((1, 1), (2, 1)), "pseudo": ((3, 1), (4, 1))}
    raise ConfigError(f"layout must be 'stacked' or 'side', got {layout!r}")


def _add_coloured_series(fig: go.Figure, values: np.ndarray, slot_labels: np.ndarray, block_len: int,
                         offs: np.ndarray, label_name: str, legend: bool, cell: tuple[int, int], starts: np.ndarray,
                         times: np.ndarray | None) -> None:
    """One line trace per label over the block slots that carry it (legend entries on the first panel only)."""
    cls = scatter_class(len(slot_labels) * len(offs))
    for lab in sorted(pd.unique(slot_labels).tolist()):
        ticks, ys, gap = _segments(values, slot_labels, block_len, lab, offs)
        fig.add_trace(cls(x=_slot_x(ticks, gap, starts, block_len, times), y=ys.astype(np.float32), mode="lines",
                          name=f"{label_name} {lab}", legendgroup=str(lab), showlegend=legend,
                          line={"color": regime_color(lab), "width": 1.3}, hoverinfo="skip"),
                      row=cell[0], col=cell[1])


def _label_scale(labels: np.ndarray) -> tuple[np.ndarray, list, float, float]:
    """Barcode colours: (z per label value, a stepped colour scale, zmin, zmax). Integer labels are their own z
    (hover shows them) in their palette colour; other labels are coded 0..K-1 in palette order."""
    values = sorted(pd.unique(labels).tolist())
    if all(is_int(v) for v in values):
        lo, hi = int(min(values)), int(max(values))
        codes, colours = np.arange(lo, hi + 1), [regime_color(v) for v in range(lo, hi + 1)]
    else:
        lo, hi = 0, len(values) - 1
        codes, colours = np.arange(len(values)), [regime_color(i) for i in range(len(values))]
    k = len(colours)
    scale = [stop for i, c in enumerate(colours) for stop in ([i / k, c], [(i + 1) / k, c])]
    lookup = dict(zip(values, codes if not all(is_int(v) for v in values) else values))
    return np.vectorize(lookup.get, otypes=[np.int32])(labels) if len(labels) else np.zeros(0, np.int32), \
        scale, lo - 0.5, hi + 0.5


def _add_barcode(fig: go.Figure, order: np.ndarray, slot_labels: np.ndarray, block_len: int, name: str,
                 label_name: str, cell: tuple[int, int], scale: tuple, starts: np.ndarray,
                 times: np.ndarray | None) -> None:
    """One heatmap cell per block slot in its label's colour (one image, not N bars: 15k bars took seconds to
    validate and to draw); hovering names the block and the label."""
    z_all, colours, zmin, zmax = scale
    n = len(order)
    z = z_all[order][None, :]                                                         # (1, N) in slot order
    z = z.astype(np.int8) if -128 <= zmin and zmax <= 127 else z                      # 1 byte per cell
    # Slot panels: cells every block_len ticks from block_len / 2 (x0 / dx, no x array); dated: block mid times.
    where: dict = dict(x0=block_len / 2, dx=block_len) if times is None else dict(
        x=date_ms(times[np.minimum(starts[order] + block_len // 2, len(times) - 1)]))
    fig.add_trace(go.Heatmap(**where, z=z, zmin=zmin, zmax=zmax, colorscale=colours, showscale=False, name=name,
                             customdata=order.astype(np.int16 if n < 2 ** 15 else np.int32)[None, :], xgap=0, ygap=0,
                             hovertemplate=f"block %{{customdata}} · {label_name} %{{z}}<extra></extra>"),
                  row=cell[0], col=cell[1])
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="", zeroline=False, row=cell[0], col=cell[1])


def _timeline_layout(fig: go.Figure, layout: str, block_len: int, series_name: str, height: int, cells: dict,
                     dated: bool) -> go.Figure:
    """Without dates all x axes are linked (tick slots); with dates each panel's barcode follows its own series
    (the chronological one on a date axis). Axis titles under the barcodes, the legend on top."""
    if not dated:
        fig.update_xaxes(matches="x")
        last_row = 2 if layout == "side" else 4
        for col in ((1, 2) if layout == "side" else (1,)):
            fig.update_xaxes(title_text=f"tick slot (block position × {block_len})", row=last_row, col=col)
    else:
        for panel, (line_cell, bar_cell) in cells.items():
            line_axis = fig.get_subplot(*line_cell).xaxis.plotly_name.replace("axis", "")
            chrono = panel == "chrono"
            fig.update_xaxes(showticklabels=False, type="date" if chrono else None, row=line_cell[0],
                             col=line_cell[1])
            fig.update_xaxes(matches=line_axis, type="date" if chrono else None, row=bar_cell[0], col=bar_cell[1],
                             title_text=None if chrono else f"pseudo-timeline slot (position × {block_len})")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 80, "b": 10}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": 0.995, "yanchor": "top", "x": 0, "yref": "container"})
    fig.update_yaxes(title_text=series_name, row=1, col=1)
    return fig


def similarity_matrices(latents: np.ndarray, order: np.ndarray,
                        max_cells: int = 300) -> tuple[np.ndarray, np.ndarray, int]:
    """Cosine similarity (N, N) of blocks in chronological and in ``order`` order, pooled to <= max_cells.

    Returns (chrono, pseudo, pool) where pool is the tile size in blocks (1 = unpooled). A tile pair's mean cosine
    is the dot product of the two tiles' mean unit latents (mean_i mean_j z_i . z_j = mean(z_A) . mean(z_B)), so
    pooling costs O(N d + k^2 d) and never forms an N x N matrix.
    """
    z = unit_latents(latents)
    n = z.shape[0]
    b = max(1, math.ceil(n / max_cells))

    def pooled(zz: np.ndarray) -> np.ndarray:
        if b == 1:
            return zz @ zz.T
        edges = np.arange(0, n, b)
        means = np.add.reduceat(zz, edges, axis=0) / np.diff(np.append(edges, n))[:, None]   # (k, d)
        return means @ means.T

    return pooled(z), pooled(z[np.asarray(order)]), b


def similarity_figure(latents: np.ndarray, order: np.ndarray, max_cells: int = 300, height: int = 460) -> go.Figure:
    """Two heatmaps of latent cosine similarity: chronological order (left) and pseudo-timeline order (right)."""
    chrono, pseudo, b = similarity_matrices(latents, order, max_cells)
    unit = "block" if b == 1 else f"{b}-block tile"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.06,
                        subplot_titles=("Chronological order", "Pseudo-timeline order"))
    for col, m in ((1, chrono), (2, pseudo)):
        fig.add_trace(go.Heatmap(z=m.astype(np.float32), zmin=-1, zmax=1, colorscale="RdBu_r", showscale=col == 2,
                                 colorbar={"title": {"text": "cos"}, "thickness": 12},
                                 hovertemplate=f"{unit} %{{y}} vs %{{x}}: cos %{{z:.2f}}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    fig.update_xaxes(title_text=f"position ({unit}s)")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


WALK_CONTEXT_POINTS = 1500  # the walk's real-time series is context only: a strided copy keeps it in SVG


def walk_figure(series: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray,
                labels: np.ndarray | None = None, *, x: np.ndarray | None = None, max_frames: int = 120,
                trail: int = 8, label_name: str = "regime", series_name: str = "price",
                height: int = 560) -> go.Figure:
    """Animated walk along the pseudo-timeline: each step's block marked on the real-time series (top) and on
    the permutation map (bottom: x = real start tick, y = pseudo-timeline position). Play / pause buttons and a
    slider run client-side (no reruns); at most ``max_frames`` frames (evenly spaced steps) keep it light.
    """
    walk = _Walk(np.asarray(series, dtype=np.float64), np.asarray(starts, dtype=np.int64), block_len,
                 np.asarray(order, dtype=np.int64), x, trail)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.06)
    _add_walk_background(fig, walk, labels, label_name, series_name)
    moving = list(range(len(fig.data), len(fig.data) + 3))
    for i, tr in enumerate(walk.traces(0)):
        fig.add_trace(tr, row=1 if i == 0 else 2, col=1)
    steps = np.unique(np.linspace(0, walk.n - 1, min(max_frames, walk.n)).round().astype(int))
    fig.frames = [walk.frame(int(p), moving) for p in steps]
    return _walk_layout(fig, walk, steps, series_name, height)


class _Walk:
    """The walk's arrays, and the three moving traces (current block, trail, current step) of one step."""

    def __init__(self, s: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray, x: np.ndarray | None,
                 trail: int) -> None:
        self.s, self.starts, self.order, self.trail, self.n = s, starts, order, trail, len(order)
        self.xs = np.arange(s.shape[0]) if x is None else np.asarray(x)
        self.pos = np.empty(self.n, dtype=np.int64)
        self.pos[order] = np.arange(self.n)                   # pseudo position of each block
        self.step = stride(s.shape[0], WALK_CONTEXT_POINTS)
        self.offs = strided_ticks(block_len, self.step)       # ticks drawn inside the current block
        # Frames are plain dicts with plain-list x values and validated once by the figure: datetime64 arrays and
        # go.* objects per frame cost ~5 ms each to validate, i.e. most of a page render at 120 frames.
        self.xl = as_list(self.xs)
        self.block_x = [self.xl[int(v)] for v in starts]

    def traces(self, p: int) -> list[dict]:
        b = int(self.order[p])
        ticks = int(self.starts[b]) + self.offs
        tr = self.order[max(0, p - self.trail): p + 1]
        return [{"type": "scatter", "x": [self.xl[t] for t in ticks], "y": self.s[ticks].tolist(), "mode": "lines",
                 "name": "current block", "line": {"color": HIGHLIGHT, "width": 4}, "showlegend": False},
                {"type": "scatter", "x": [self.block_x[int(v)] for v in tr], "y": self.pos[tr].tolist(),
                 "mode": "lines", "line": {"color": HIGHLIGHT, "width": 1, "dash": "dot"}, "name": "trail",
                 "showlegend": False, "hoverinfo": "skip"},
                {"type": "scatter", "x": [self.block_x[b]], "y": [p], "mode": "markers", "name": "current step",
                 "showlegend": False, "hovertemplate": f"step {p} · block {b}<extra></extra>",
                 "marker": {"color": HIGHLIGHT, "size": 14, "symbol": "star", "line": {"color": "black", "width": 1}}}]

    def frame(self, p: int, moving: list[int]) -> dict:
        b = int(self.order[p])
        return {"name": str(p), "data": self.traces(p), "traces": moving,
                "layout": {"title": {"text": f"step {p + 1}/{self.n}: block {b} "
                                             f"(starts {fmt_time(self.xs[self.starts[b]])})"}}}


def _add_walk_background(fig: go.Figure, walk: _Walk, labels: np.ndarray | None, label_name: str,
                         series_name: str) -> None:
    """The strided real-time series (top) and every block on the permutation map, by label (bottom)."""
    keep = strided_ticks(walk.s.shape[0], walk.step)
    fig.add_trace(go.Scatter(x=walk.xs[keep], y=walk.s[keep], mode="lines", name=series_name,
                             line={"color": "#999", "width": 1}, hoverinfo="skip"), row=1, col=1)
    bx = walk.xs[walk.starts]
    cls = scatter_class(len(bx))          # 15k block markers are WebGL; the moving traces stay SVG (animated)
    size = 5 if len(bx) <= WEBGL_THRESHOLD else 3
    if labels is None:
        fig.add_trace(cls(x=bx, y=walk.pos, mode="markers", name="blocks", marker={"color": "#777", "size": size},
                          hoverinfo="skip"), row=2, col=1)
        return
    labels = np.asarray(labels)
    for lab in sorted(pd.unique(labels).tolist()):
        m = labels == lab
        fig.add_trace(cls(x=bx[m], y=walk.pos[m], mode="markers", name=f"{label_name} {lab}",
                          marker={"color": regime_color(lab), "size": size}, hoverinfo="skip"), row=2, col=1)


def _play_controls(steps: np.ndarray) -> tuple[list[dict], list[dict]]:
    """Play / pause buttons and a slider with one entry per frame (both run client-side)."""
    buttons = [{"type": "buttons", "showactive": False, "x": 1.0, "y": 1.12, "xanchor": "right", "direction": "left",
                "buttons": [{"label": "▶ Play", "method": "animate",
                             "args": [None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True,
                                             "transition": {"duration": 0}}]},
                            {"label": "⏸ Pause", "method": "animate",
                             "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}]}]
    slider = [{"active": 0, "y": -0.1, "len": 1.0, "x": 0.0, "currentvalue": {"prefix": "step "}, "pad": {"t": 10},
               "steps": [{"label": str(int(p) + 1), "method": "animate",
                          "args": [[str(p)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                         for p in steps]}]
    return buttons, slider


def _walk_layout(fig: go.Figure, walk: _Walk, steps: np.ndarray, series_name: str, height: int) -> go.Figure:
    buttons, slider = _play_controls(steps)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 60, "b": 90}, plot_bgcolor="white",
                      showlegend=False, title={"text": f"step 1/{walk.n}: block {int(walk.order[0])}", "x": 0.01,
                                               "xanchor": "left"},
                      updatemenus=buttons, sliders=slider)
    fig.update_yaxes(title_text=series_name, row=1, col=1)
    fig.update_yaxes(title_text="pseudo-timeline position", row=2, col=1)
    fig.update_xaxes(title_text="real time (block start)", row=2, col=1)
    if is_time(walk.xs):
        fig.update_xaxes(type="date")
    return fig


def ordering_figure(rows: list[dict], height: int = 300) -> go.Figure:
    """Two bar panels per order (rows of ``metrics.ordering_table``): the optimality gap (path cost over the MST
    lower bound, in %) and, when labels were given, the number of label switches between neighbours."""
    names = [r["order"] for r in rows]
    has_sw = all("switches" in r for r in rows)
    fig = make_subplots(rows=1, cols=2 if has_sw else 1, horizontal_spacing=0.12,
                        subplot_titles=("Optimality gap (cost / lower bound − 1)",)
                        + (("Regime switches between neighbours",) if has_sw else ()))
    gap = [100 * r["gap"] for r in rows]
    fig.add_trace(go.Bar(x=names, y=gap, text=[f"{g:.0f} %" for g in gap], textposition="outside",
                         marker_color="#1f77b4", name="gap", hovertemplate="%{x}: gap %{y:.1f} %<extra></extra>"),
                  row=1, col=1)
    if has_sw:
        sw = [r["switches"] for r in rows]
        fig.add_trace(go.Bar(x=names, y=sw, text=[f"{s:.0f}" for s in sw], textposition="outside",
                             marker_color="#ff7f0e", name="switches",
                             hovertemplate="%{x}: %{y:.0f} switches<extra></extra>"), row=1, col=2)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=height, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
