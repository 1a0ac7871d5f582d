"""Plotly figure builders for the Manifold and Timeline pages: pure functions, arrays in, ``go.Figure`` out.

Owns the regime palette (``regime_color``), hover texts, the projection scatter (2-D / 3-D, categorical or
continuous colour, selection overlay, live points), the price series with highlighted blocks, the side-by-side
chronological vs pseudo-timeline view, cosine-similarity heatmaps in both orders, the animated walk along the
pseudo-timeline, the K sweep, the cluster-vs-truth contingency table and the neighbour-window overlay.
Every point of the projection carries its block index in ``customdata`` so selections map back to blocks
(``blocks_from_selection``). Knows nothing about Streamlit, engines or datasets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Qualitative palette (Plotly D3); regime 0 is the calmest after ``regimes.cluster_regimes`` ordering.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
HIGHLIGHT = "#e4007c"       # selected blocks on every chart
WEBGL_THRESHOLD = 2000      # SVG scatter gets slow above this many points; use Scattergl
MISSING_COLOR = "#c8c8c8"


def regime_color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


def _scatter(n: int):
    return go.Scattergl if n > WEBGL_THRESHOLD else go.Scatter


def _fmt_time(v) -> str:
    if isinstance(v, (np.datetime64, pd.Timestamp)):
        return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
    return str(v)


def block_hover_text(table: pd.DataFrame, extra: dict[str, Sequence] | None = None) -> list[str]:
    """One hover string per block row of ``regimes.block_table`` (+ extra named columns, e.g. regime)."""
    extra = extra or {}
    out = []
    cols = {name: list(vals) for name, vals in extra.items()}
    for i, row in enumerate(table.itertuples(index=False)):
        parts = [f"<b>block {row.block}</b> · ticks {row.start}–{row.end - 1}",
                 f"{_fmt_time(row.t_start)} → {_fmt_time(row.t_end)}",
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


def projection_figure(coords: np.ndarray, color: np.ndarray, *, categorical: bool, color_title: str,
                      hover: Sequence[str] | None = None, selected: Sequence[int] = (), focus: int | None = None,
                      neighbours: Sequence[int] = (), live_xy: np.ndarray | None = None,
                      live_color: np.ndarray | None = None, title: str = "", height: int = 520) -> go.Figure:
    """Scatter of the projected blocks (N, 2|3) coloured by ``color`` (N,).

    categorical: one trace per value (legend entries "<color_title> v", palette colours); otherwise one trace with
    a Viridis colour bar (NaN values go to a grey "no value" trace). Selected blocks get an open ring, the focused
    block a star and its neighbours diamonds; live points (M, dim) are drawn as crosses.
    """
    coords = np.asarray(coords, dtype=np.float64)
    n, dim = coords.shape
    color = np.asarray(color)
    hover = list(hover) if hover is not None else [f"block {i}" for i in range(n)]
    idx = np.arange(n)
    fig = go.Figure()

    def add(mask: np.ndarray, name: str, marker: dict, showlegend: bool = True, hoverable: bool = True) -> None:
        sel = idx[mask]
        if dim == 3:
            # Scatter3d knows fewer symbols (no star); hollow markers need the "-open" variants.
            sym = {"star": "diamond", "diamond": "diamond-open"}.get(marker.get("symbol", "circle"),
                                                                     marker.get("symbol", "circle"))
            if marker.get("color") == "rgba(0,0,0,0)":
                sym = sym if sym.endswith("-open") else "circle-open"
                marker = {**marker, "color": marker.get("line", {}).get("color", "black")}
            marker = {**marker, "symbol": sym}
            fig.add_trace(go.Scatter3d(x=coords[sel, 0], y=coords[sel, 1], z=coords[sel, 2], mode="markers",
                                       name=name, marker={**marker, "size": max(2, marker.get("size", 6) - 3)},
                                       customdata=sel, text=[hover[i] for i in sel],
                                       hovertemplate="%{text}<extra></extra>", showlegend=showlegend))
        else:
            fig.add_trace(_scatter(n)(x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=name, marker=marker,
                                      customdata=sel, text=[hover[i] for i in sel],
                                      hovertemplate="%{text}<extra></extra>" if hoverable else None,
                                      hoverinfo=None if hoverable else "skip", showlegend=showlegend))

    if categorical:
        for v in sorted(pd.unique(color).tolist()):
            add(color == v, f"{color_title} {v}", {"color": regime_color(v) if _is_int(v) else None, "size": 7,
                                                   "opacity": 0.85})
    else:
        vals = color.astype(np.float64)
        missing = ~np.isfinite(vals)
        if missing.any():
            add(missing, "no value", {"color": MISSING_COLOR, "size": 6, "opacity": 0.6})
        ok = ~missing
        sel = idx[ok]
        marker = {"color": vals[ok], "colorscale": "Viridis", "size": 7, "opacity": 0.9,
                  "colorbar": {"title": {"text": color_title}, "thickness": 14}}
        if dim == 3:
            fig.add_trace(go.Scatter3d(x=coords[sel, 0], y=coords[sel, 1], z=coords[sel, 2], mode="markers",
                                       name=color_title, marker={**marker, "size": 4}, customdata=sel,
                                       text=[hover[i] for i in sel], hovertemplate="%{text}<extra></extra>",
                                       showlegend=False))
        else:
            fig.add_trace(_scatter(n)(x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=color_title,
                                      marker=marker, customdata=sel, text=[hover[i] for i in sel],
                                      hovertemplate="%{text}<extra></extra>", showlegend=False))
    if len(selected):
        m = np.zeros(n, bool)
        m[np.asarray(selected, dtype=np.int64)] = True
        add(m, f"selected ({int(m.sum())})", {"color": "rgba(0,0,0,0)", "size": 12,
                                              "line": {"color": HIGHLIGHT, "width": 2}})
    if len(neighbours):
        m = np.zeros(n, bool)
        m[np.asarray(neighbours, dtype=np.int64)] = True
        add(m, "neighbours", {"symbol": "diamond", "color": "rgba(0,0,0,0)", "size": 13,
                              "line": {"color": "black", "width": 2}})
    if focus is not None:
        m = idx == int(focus)
        add(m, f"block {int(focus)}", {"symbol": "star", "color": HIGHLIGHT, "size": 18,
                                       "line": {"color": "black", "width": 1}})
    if live_xy is not None and len(live_xy):
        lx = np.asarray(live_xy, dtype=np.float64)
        lc = None if live_color is None else np.asarray(live_color, dtype=np.float64)
        marker = {"symbol": "x", "size": 7, "color": "black" if lc is None else lc, "colorscale": "Viridis",
                  "cmin": 0, "cmax": 1, "line": {"width": 0}}
        text = [f"live window {j}" + ("" if lc is None else f" · confidence {lc[j]:.2f}") for j in range(len(lx))]
        if dim == 3:
            fig.add_trace(go.Scatter3d(x=lx[:, 0], y=lx[:, 1], z=lx[:, 2], mode="markers", name="live windows",
                                       marker={**marker, "size": 3}, text=text, hovertemplate="%{text}<extra></extra>"))
        else:
            fig.add_trace(_scatter(len(lx))(x=lx[:, 0], y=lx[:, 1], mode="markers", name="live windows",
                                            marker=marker, text=text, hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=title or None, height=height, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      legend={"orientation": "h", "y": -0.05}, dragmode="lasso" if dim == 2 else "orbit",
                      uirevision="projection", plot_bgcolor="white")
    if dim == 2:
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, title=None)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, title=None, scaleanchor="x")
    return fig


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _as_list(xs: np.ndarray) -> list:
    """Plain-list x values; datetime64 becomes ISO strings (``tolist`` would give nanosecond integers)."""
    xs = np.asarray(xs)
    return np.datetime_as_string(xs, unit="s").tolist() if np.issubdtype(xs.dtype, np.datetime64) else xs.tolist()


def _block_segments(xs: np.ndarray, series: np.ndarray, starts: np.ndarray, block_len: int,
                    blocks: Sequence[int]) -> tuple[list, list]:
    """x, y of the given blocks only (one extra tick before each so it joins the line), None between blocks."""
    xs = np.asarray(xs)
    ox, oy = [], []
    for b in sorted(int(v) for v in blocks):
        s = int(starts[b])
        lo = max(s - 1, 0)
        ox.extend(_as_list(xs[lo: s + block_len]))
        oy.extend(series[lo: s + block_len].tolist())
        ox.append(None)
        oy.append(None)
    return ox, oy


def price_figure(series: np.ndarray, starts: np.ndarray, block_len: int, *, x: np.ndarray | None = None,
                 highlight: Sequence[int] = (), focus: int | None = None, neighbours: Sequence[int] = (),
                 split: int | None = None, series_name: str = "price", height: int = 320) -> go.Figure:
    """The series (T,) with the highlighted blocks drawn over it in the highlight colour.

    The focused block and its neighbours get shaded bands; the held-out span (from ``split``) is shaded grey.
    """
    s = np.asarray(series, dtype=np.float64)
    t = s.shape[0]
    xs = np.arange(t) if x is None else np.asarray(x)
    cls = _scatter(t)
    fig = go.Figure()
    fig.add_trace(cls(x=xs, y=s, mode="lines", name=series_name, line={"color": "#555", "width": 1}))
    if len(highlight):
        hx, hy = _block_segments(xs, s, starts, block_len, highlight)
        fig.add_trace(cls(x=hx, y=hy, mode="lines", name=f"selected blocks ({len(highlight)})",
                          line={"color": HIGHLIGHT, "width": 2.5}, connectgaps=False))
    for b in neighbours:
        st_ = int(starts[int(b)])
        fig.add_vrect(x0=xs[st_], x1=xs[min(st_ + block_len - 1, t - 1)], fillcolor="#ff7f0e", opacity=0.18,
                      line_width=0)
    if focus is not None:
        st_ = int(starts[int(focus)])
        fig.add_vrect(x0=xs[st_], x1=xs[min(st_ + block_len - 1, t - 1)], fillcolor=HIGHLIGHT, opacity=0.3,
                      line_width=0, annotation_text=f"block {int(focus)}", annotation_position="top left")
    if split is not None and 0 < split < t:
        fig.add_vrect(x0=xs[split], x1=xs[-1], fillcolor="grey", opacity=0.12, line_width=0,
                      annotation_text="held out", annotation_position="top right")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "y": 1.12}, yaxis_title=series_name, plot_bgcolor="white",
                      hovermode="x")
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


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
    """Tick offsets drawn inside each block so a panel has <= ~max_points points (always the first and last).

    Keeps line charts of long series in plain SVG (no WebGL context, light JSON) without moving block edges.
    """
    stride = max(1, math.ceil(n_blocks * block_len / max_points))
    return np.unique(np.append(np.arange(0, block_len, stride), block_len - 1))


def _segments(values: np.ndarray, slot_labels: np.ndarray, block_len: int, label: int,
              offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x, y of every block slot with this label (at ``offsets`` within each block), one joining tick before
    each run, and a NaN gap between runs. NumPy arrays: plotly ships them as compact typed arrays."""
    offsets = np.arange(block_len) if offsets is None else np.asarray(offsets)
    is_lab = np.asarray(slot_labels) == label
    # Runs of consecutive slots with this label: [p, q] inclusive.
    edges = np.diff(np.concatenate([[0], is_lab.astype(np.int8), [0]]))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    xs, ys = [], []
    for p, q in zip(run_starts, run_ends):
        ticks = (np.arange(p, q + 1)[:, None] * block_len + offsets[None, :]).ravel()
        if p > 0:
            ticks = np.concatenate([[p * block_len - 1], ticks])
        xs.extend([ticks, [ticks[-1] + 0.5]])
        ys.extend([values[ticks], [np.nan]])
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys)


def timeline_figure(series: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray, labels: np.ndarray,
                    *, layout: str = "stacked", label_name: str = "regime", series_name: str = "price",
                    height: int = 620) -> go.Figure:
    """The same series in chronological order and in pseudo-timeline order, each block coloured by its label.

    x is the tick slot (block position x block_len + offset) in both panels, and the axes are linked, so the
    chronological panel's scattered regimes line up against the pseudo-timeline's contiguous runs. Each panel has
    a barcode strip underneath: one bar per block slot in the label's colour.
    """
    starts = np.asarray(starts, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    labels = np.asarray(labels)
    n = len(starts)
    chrono = np.arange(n)
    vals = {"chrono": stitched_series(series, starts, block_len, chrono),
            "pseudo": stitched_series(series, starts, block_len, order)}
    from .metrics import mean_run_length

    titles = (f"Chronological order · mean run {mean_run_length(labels):.1f} blocks",
              f"Pseudo-timeline (defragmented) · mean run {mean_run_length(labels[order]):.1f} blocks")
    if layout == "side":
        fig = make_subplots(rows=2, cols=2, shared_xaxes=True, shared_yaxes=True, row_heights=[0.85, 0.15],
                            vertical_spacing=0.03, horizontal_spacing=0.03, subplot_titles=titles)
        cells = {"chrono": ((1, 1), (2, 1)), "pseudo": ((1, 2), (2, 2))}
    elif layout == "stacked":
        fig = make_subplots(rows=4, cols=1, shared_xaxes=True, row_heights=[0.4, 0.08, 0.4, 0.08],
                            vertical_spacing=0.04, subplot_titles=(titles[0], None, titles[1], None))
        cells = {"chrono": ((1, 1), (2, 1)), "pseudo": ((3, 1), (4, 1))}
    else:
        raise ValueError(f"layout must be 'stacked' or 'side', got {layout!r}")
    offs = block_offsets(block_len, n)
    cls = _scatter(n * len(offs))
    uniq = sorted(pd.unique(labels).tolist())
    for panel, ordr in (("chrono", chrono), ("pseudo", order)):
        (pr, pc), (br, bc) = cells[panel]
        slot_labels = labels[ordr]
        for lab in uniq:
            xs, ys = _segments(vals[panel], slot_labels, block_len, lab, offs)
            fig.add_trace(cls(x=xs, y=ys, mode="lines", name=f"{label_name} {lab}", legendgroup=str(lab),
                              showlegend=panel == "chrono", line={"color": regime_color(lab), "width": 1.3},
                              hoverinfo="skip"), row=pr, col=pc)
        centres = np.arange(n) * block_len + block_len / 2
        fig.add_trace(go.Bar(x=centres, y=np.ones(n), width=block_len, name=f"{panel} barcode", showlegend=False,
                             marker={"color": [regime_color(v) for v in slot_labels], "line": {"width": 0}},
                             customdata=np.stack([ordr, slot_labels, np.arange(n)], axis=1),
                             hovertemplate=(f"slot %{{customdata[2]}} · block %{{customdata[0]}} · {label_name} "
                                            "%{customdata[1]}<extra></extra>")), row=br, col=bc)
        fig.update_yaxes(showticklabels=False, showgrid=False, range=[0, 1], row=br, col=bc)
    fig.update_xaxes(matches="x")
    last_row = 2 if layout == "side" else 4
    for col in ((1, 2) if layout == "side" else (1,)):
        fig.update_xaxes(title_text=f"tick slot (block position × {block_len})", row=last_row, col=col)
    fig.update_layout(height=height, bargap=0, margin={"l": 10, "r": 10, "t": 80, "b": 10}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": 0.995, "yanchor": "top", "x": 0, "yref": "container"})
    fig.update_yaxes(title_text=series_name, row=1, col=1)
    return fig


def similarity_matrices(latents: np.ndarray, order: np.ndarray,
                        max_cells: int = 300) -> tuple[np.ndarray, np.ndarray, int]:
    """Cosine similarity (N, N) of blocks in chronological and in ``order`` order, pooled to <= max_cells.

    Returns (chrono, pseudo, pool) where pool is the tile size in blocks (1 = unpooled). Pooling works on
    (chunk, N) slices so a 10k-block model never allocates a 10k x 10k matrix.
    """
    z = np.asarray(latents, dtype=np.float64)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    n = z.shape[0]
    b = max(1, math.ceil(n / max_cells))

    def pooled(zz: np.ndarray) -> np.ndarray:
        if b == 1:
            return zz @ zz.T
        k = math.ceil(n / b)
        out = np.empty((k, k))
        for i in range(k):
            rows = zz[i * b:(i + 1) * b] @ zz.T                        # (<=b, N)
            pad = k * b - n
            rp = np.pad(rows, ((0, 0), (0, pad)), constant_values=np.nan).reshape(rows.shape[0], k, b)
            out[i] = np.nanmean(rp, axis=(0, 2))
        return out

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


def walk_figure(series: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray,
                labels: np.ndarray | None = None, *, x: np.ndarray | None = None, max_frames: int = 120,
                trail: int = 8, label_name: str = "regime", series_name: str = "price",
                height: int = 560) -> go.Figure:
    """Animated walk along the pseudo-timeline: each step's block marked on the real-time series (top) and on
    the permutation map (bottom: x = real start tick, y = pseudo-timeline position). Play / pause buttons and a
    slider run client-side (no reruns); at most ``max_frames`` frames (evenly spaced steps) keep it light.
    """
    s = np.asarray(series, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    n = len(order)
    xs = np.arange(s.shape[0]) if x is None else np.asarray(x)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)                       # pseudo position of each block
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.06)
    # The real-time series is only context here: a strided copy (<= ~1500 points) keeps it in SVG.
    stride = max(1, math.ceil(s.shape[0] / 1500))
    keep = np.unique(np.append(np.arange(0, s.shape[0], stride), s.shape[0] - 1))
    fig.add_trace(go.Scatter(x=xs[keep], y=s[keep], mode="lines", name=series_name,
                             line={"color": "#999", "width": 1}, hoverinfo="skip"), row=1, col=1)
    offs = np.unique(np.append(np.arange(0, block_len, stride), block_len - 1))
    bx = xs[starts]
    if labels is None:
        fig.add_trace(go.Scatter(x=bx, y=pos, mode="markers", name="blocks", marker={"color": "#777", "size": 5},
                                 hoverinfo="skip"), row=2, col=1)
    else:
        labels = np.asarray(labels)
        for lab in sorted(pd.unique(labels).tolist()):
            m = labels == lab
            fig.add_trace(go.Scatter(x=bx[m], y=pos[m], mode="markers", name=f"{label_name} {lab}",
                                     marker={"color": regime_color(lab), "size": 5}, hoverinfo="skip"), row=2, col=1)
    n_static = len(fig.data)

    # Frames are plain dicts with plain-list x values and validated once by the figure: datetime64 arrays and
    # go.* objects per frame cost ~5 ms each to validate, i.e. most of a page render at 120 frames.
    xl = _as_list(xs)
    bl_ = [xl[int(v)] for v in starts]

    def dynamic(p: int) -> list[dict]:
        b = int(order[p])
        ticks = int(starts[b]) + offs
        tr = order[max(0, p - trail): p + 1]
        return [{"type": "scatter", "x": [xl[t] for t in ticks], "y": s[ticks].tolist(), "mode": "lines",
                 "name": "current block",
                 "line": {"color": HIGHLIGHT, "width": 4}, "showlegend": False},
                {"type": "scatter", "x": [bl_[int(v)] for v in tr], "y": pos[tr].tolist(), "mode": "lines",
                 "line": {"color": HIGHLIGHT, "width": 1, "dash": "dot"}, "name": "trail", "showlegend": False,
                 "hoverinfo": "skip"},
                {"type": "scatter", "x": [bl_[b]], "y": [p], "mode": "markers", "name": "current step",
                 "showlegend": False, "hovertemplate": f"step {p} · block {b}<extra></extra>",
                 "marker": {"color": HIGHLIGHT, "size": 14, "symbol": "star", "line": {"color": "black", "width": 1}}}]

    for i, tr_ in enumerate(dynamic(0)):
        fig.add_trace(tr_, row=1 if i == 0 else 2, col=1)
    steps = np.unique(np.linspace(0, n - 1, min(max_frames, n)).round().astype(int))
    dyn_idx = list(range(n_static, n_static + 3))
    fig.frames = [{"name": str(p), "data": dynamic(int(p)), "traces": dyn_idx,
                   "layout": {"title": {"text": f"step {p + 1}/{n}: block {int(order[p])} "
                                                f"(starts {_fmt_time(xs[starts[order[p]]])})"}}}
                  for p in steps]
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 60, "b": 90}, plot_bgcolor="white", showlegend=False,
        title={"text": f"step 1/{n}: block {int(order[0])}", "x": 0.01, "xanchor": "left"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 1.0, "y": 1.12, "xanchor": "right",
                      "direction": "left",
                      "buttons": [{"label": "▶ Play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True,
                                                   "transition": {"duration": 0}}]},
                                  {"label": "⏸ Pause", "method": "animate",
                                   "args": [[None], {"frame": {"duration": 0, "redraw": False},
                                                     "mode": "immediate"}]}]}],
        sliders=[{"active": 0, "y": -0.1, "len": 1.0, "x": 0.0, "currentvalue": {"prefix": "step "},
                  "pad": {"t": 10},
                  "steps": [{"label": str(int(p) + 1), "method": "animate",
                             "args": [[str(p)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                            for p in steps]}])
    fig.update_yaxes(title_text=series_name, row=1, col=1)
    fig.update_yaxes(title_text="pseudo-timeline position", row=2, col=1)
    fig.update_xaxes(title_text="real time (block start)", row=2, col=1)
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
