"""Time axes in real time and large point sets, checked on the figure JSON without a browser.

Every time axis takes the dataset's timestamps when it has them (tick numbers otherwise); shaded bands and their
labels are raw shapes / annotations we place (the label over the band's middle), with no NaN or missing
coordinate in the layout and nothing logged or warned while the figure is built and serialised. Above the
documented point counts scatter traces are WebGL and the projection gets a density layer, and the figures at
15,625 blocks stay small.
"""

import json
import logging
import math
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from chronoslib.plots import data, health, live, manifold, style, timeline
from tests.plot_support import A, block_series, valid

MINUTES = pd.date_range("2024-01-02 09:30", periods=101, freq="min").to_numpy()    # the sample's minute bars


def _bad_numbers(obj, path="layout"):
    """Paths of every NaN / inf number or None coordinate under ``obj`` (a figure's layout as plain JSON)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if v is None and k in ("x", "y", "x0", "x1", "y0", "y1"):
                out.append(f"{path}.{k}")
            out += _bad_numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _bad_numbers(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        out.append(path)
    return out


def _built_quietly(build, caplog):
    """Build and serialise a figure with every warning an error and no log record at WARNING or above."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING):
            fig = build()
            layout = json.loads(fig.to_json())["layout"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    return fig, layout


def _ms(t) -> float:
    return float(style.date_ms(np.asarray([t]))[0])


def test_a_band_on_a_date_axis_has_datetime_edges_and_its_label_over_its_middle():
    shape, (ann,) = style.band(MINUTES[10], MINUTES[30], "grey", 0.1, "held out")
    assert (shape["x0"], shape["x1"]) == ("2024-01-02T09:40:00", "2024-01-02T10:00:00")
    assert ann["x"] == "2024-01-02T09:50:00" and ann["xanchor"] == "center" and ann["text"] == "held out"
    assert shape["yref"] == ann["yref"] == "y domain" and (shape["y0"], shape["y1"]) == (0, 1)
    shape, (ann,) = style.band(10, 30, "grey", 0.1, "held out", xref="x2", yref="y3")
    assert (shape["x0"], shape["x1"], ann["x"]) == (10.0, 30.0, 20.0)
    assert shape["xref"] == ann["xref"] == "x2" and shape["yref"] == "y3 domain"
    assert style.band(1, 2, "grey", 0.1)[1] == []                      # no label, no annotation


def test_time_axis_takes_datetimes_and_falls_back_to_tick_numbers():
    assert np.array_equal(style.time_axis(None, 4), np.arange(4))
    assert np.array_equal(style.time_axis(np.arange(10, 14), 4), np.arange(4))   # numbers are not timestamps
    assert style.time_axis(MINUTES, 101) is not None and style.is_time(style.time_axis(MINUTES, 101))
    with pytest.raises(ValueError, match="101 values but the series has 5"):
        style.time_axis(MINUTES, 5)


def test_price_figure_bands_sit_on_the_blocks_times_with_labels_at_their_middles(caplog):
    series, starts, _, _ = block_series()                # 12 blocks of 8 ticks, 101 ticks
    fig, layout = _built_quietly(lambda: manifold.price_figure(series, starts, 8, x=MINUTES, highlight=[1],
                                                               focus=5, neighbours=[6], split=90), caplog)
    assert layout["xaxis"]["type"] == "date" and not _bad_numbers(layout)
    nb, focus, held = layout["shapes"]
    assert (nb["x0"], nb["x1"]) == ("2024-01-02T10:18:00", "2024-01-02T10:25:00")      # ticks 48..55
    assert (focus["x0"], focus["x1"]) == ("2024-01-02T10:10:00", "2024-01-02T10:17:00")  # ticks 40..47
    assert (held["x0"], held["x1"]) == ("2024-01-02T11:00:00", "2024-01-02T11:10:00")  # ticks 90..100
    labels = {a["text"]: a for a in layout["annotations"]}
    assert labels["block 5"]["x"] == "2024-01-02T10:13:30" and labels["held out"]["x"] == "2024-01-02T11:05:00"
    assert all(a["xanchor"] == "center" and a["xref"] == "x" for a in labels.values())
    # Without timestamps: the same bands on tick numbers.
    fig = manifold.price_figure(series, starts, 8, focus=5, split=90)
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(40, 47), (90, 100)]
    assert [a.x for a in fig.layout.annotations] == [43.5, 95.0] and fig.layout.xaxis.type is None


def test_price_figure_strides_a_long_series_and_keeps_selected_blocks_whole():
    rng = np.random.default_rng(3)
    series = 100 + np.cumsum(rng.standard_normal(40_000))
    starts = np.arange(0, 40_000 - 64, 64)
    fig = manifold.price_figure(series, starts, 64, highlight=[10], max_points=1000)
    base, hl = fig.data
    assert len(base.x) <= 1001 and base.x[0] == 0 and base.x[-1] == 39_999
    assert [v for v in hl.x if v is not None] == list(range(639, 704))        # block 10 in full (+ joining tick)


def test_data_series_figure_shades_every_panel_with_one_centred_label(caplog):
    t = len(MINUTES)
    fig, layout = _built_quietly(lambda: data.series_figure(MINUTES, {"price": np.arange(t) + 1.0,
                                                                      "f0": np.sin(np.arange(t))}, 81,
                                                            price_name="price"), caplog)
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert [(r["xref"], r["yref"]) for r in rects] == [("x", "y domain"), ("x2", "y2 domain")]
    held = next(a for a in layout["annotations"] if a["text"].startswith("held out"))
    assert held["x"] == "2024-01-02T11:00:30" and not _bad_numbers(layout)     # middle of 10:51 .. 11:10


def test_timeline_puts_the_chronological_panel_on_dates_and_keeps_slots_for_the_pseudo_timeline(caplog):
    series, starts, labels, order = block_series()
    fig, layout = _built_quietly(lambda: timeline.timeline_figure(series, starts, 8, order, labels, times=MINUTES),
                                 caplog)
    assert layout["xaxis"]["type"] == "date" and layout["xaxis2"]["type"] == "date"   # chrono series + barcode
    assert layout["xaxis2"]["matches"] == "x" and layout["xaxis4"]["matches"] == "x3"
    assert layout["xaxis3"].get("type") != "date" and not _bad_numbers(layout)
    chrono = [t for t in fig.data if t.xaxis == "x" and isinstance(t, go.Scattergl | go.Scatter)]
    for tr in chrono:                                     # every drawn point at its own tick's time
        x, y = np.asarray(A(tr.x)), np.asarray(A(tr.y), dtype=float)
        ok = ~np.isnan(y)
        ticks = np.searchsorted(style.date_ms(MINUTES), x[ok])
        assert np.allclose(y[ok], series[ticks], rtol=1e-6)
    bar = next(t for t in fig.data if t.name == "chrono barcode")
    assert np.allclose(A(bar.x), style.date_ms(MINUTES[starts + 4]))           # block mid times
    pseudo = next(t for t in fig.data if t.name == "pseudo barcode")
    assert pseudo.x is None and pseudo.x0 == 4 and pseudo.dx == 8              # slot centres
    # No timestamps (or tick numbers): every axis linked on tick slots, as before.
    plain = timeline.timeline_figure(series, starts, 8, order, labels, times=np.arange(101))
    assert all(plain.layout[k].matches == "x" and plain.layout[k].type is None
               for k in plain.layout.to_plotly_json() if k.startswith("xaxis"))


def test_walk_and_drift_figures_put_time_on_their_x_axes(caplog):
    series, starts, labels, order = block_series()
    walk, layout = _built_quietly(lambda: timeline.walk_figure(series, starts, 8, order, labels, x=MINUTES,
                                                               max_frames=4), caplog)
    assert layout["xaxis"]["type"] == "date" and layout["xaxis2"]["type"] == "date"
    assert walk.frames[0].data[2].x[0] == str(MINUTES[starts[order[0]]])[:19]
    ticks = np.arange(20) * 8 + 1000
    tl = {"end": np.arange(20), "drift": np.zeros(20, bool), "centroid_dist": np.ones(20),
          "centroid_threshold": np.full(20, 2.0), "mmd2": np.ones(20), "mmd_threshold": np.full(20, 2.0)}
    times = MINUTES[:20]
    fig, layout = _built_quietly(lambda: health.drift_figure(ticks, tl, np.full(20, 0.8), np.full((20, 3), 5.0),
                                                             0.7, times=times), caplog)
    valid(fig)
    assert layout["xaxis"]["type"] == "date" and not _bad_numbers(layout)
    assert pd.to_datetime(list(fig.data[0].x)).equals(pd.to_datetime(times))
    plain = health.drift_figure(ticks, tl, np.full(20, 0.8), np.full((20, 3), 5.0), 0.7)
    assert list(plain.data[0].x) == ticks.tolist() and plain.layout.xaxis.type is None
    with pytest.raises(ValueError, match="5 values but there are 20 windows"):
        health.drift_figure(ticks, tl, np.full(20, 0.8), np.full((20, 3), 5.0), 0.7, times=MINUTES[:5])


def test_replay_panel_and_neighbour_marks_on_dates_keep_the_window_on_its_times(caplog):
    y = np.linspace(1.0, 2.0, 101)
    ticks = 500 + np.array([0, 8, 16])
    fig, layout = _built_quietly(lambda: valid(live.replay_panel(y, 16, 8, 500, ticks, np.array([0.9, 0.8, 0.5]),
                                                                 0.6, np.array([False, False, True]),
                                                                 times=MINUTES)), caplog)
    assert layout["xaxis"]["type"] == "date" and not _bad_numbers(layout)
    window = next(s for s in layout["shapes"] if s["type"] == "rect")
    assert (window["x0"], window["x1"]) == (_ms(MINUTES[16]), _ms(MINUTES[23]))
    conf = next(t for t in fig.data if t.name == "frozen registry")
    assert np.allclose(A(conf.x), style.date_ms(MINUTES[[0, 8, 16]]))
    marks = live.neighbour_marks(y, np.arange(12) * 8, 8, [2, -1], [0.7, 0.3], times=MINUTES)
    assert marks.layout.xaxis.type == "date" and marks.data[1].x == (_ms(MINUTES[20]),)   # block 2's mid tick
    plain = live.replay_panel(y, 16, 8, 500, ticks, np.array([0.9, 0.8, 0.5]), 0.6)
    rect = next(s for s in plain.layout.shapes if s.type == "rect")
    assert (rect.x0, rect.x1) == (516, 523) and plain.layout.xaxis.type == "linear"


@pytest.mark.parametrize("n, cls, density", [(style.WEBGL_THRESHOLD, go.Scatter, False),
                                             (style.WEBGL_THRESHOLD + 1, go.Scattergl, False),
                                             (manifold.DENSE_POINTS + 1, go.Scattergl, True)])
def test_projection_switches_to_webgl_then_to_a_density_layer_with_small_points(n, cls, density):
    rng = np.random.default_rng(n)
    coords = rng.standard_normal((n, 2))
    labels = rng.integers(0, 3, n)
    fig = manifold.projection_figure(coords, labels, categorical=True, color_title="regime", focus=0)
    heat = [t for t in fig.data if t.name == "density"]
    points = [t for t in fig.data if t.name != "density"]
    assert all(isinstance(t, cls) for t in points) and bool(heat) == density
    assert sorted(int(b) for t in points[:3] for b in A(t.customdata)) == list(range(n))   # every block, once
    if density:
        names = [t.name for t in fig.data]
        assert names.index("density") == 3 and names[4] == "block 0"      # over the points, under the picks
        assert isinstance(heat[0], go.Scattergl) and heat[0].hoverinfo == "skip"
        x, y = np.asarray(A(heat[0].x)), np.asarray(A(heat[0].y))
        ok = ~np.isnan(x)
        assert ok.sum() > 100 and np.isnan(y[~ok]).all()                  # segments, NaN between them
        # Contour lines stay around the point cloud (within its bounding box).
        assert x[ok].min() >= coords[:, 0].min() and x[ok].max() <= coords[:, 0].max()
        assert points[0].marker.size == manifold.DENSE_MARKER and points[0].text is None
    else:
        assert points[0].marker.size == 7 and len(points[0].text) == int((labels == 0).sum())


def test_contour_segments_lie_on_their_level():
    xc, yc = np.linspace(-2, 2, 41), np.linspace(-2, 2, 41)
    xx, yy = np.meshgrid(xc, yc)                                          # (ny, nx): rows are y
    plane = manifold._contour_segments(xx + 2 * yy, xc, yc, 0.5)
    pts = plane[~np.isnan(plane[:, 0])]
    assert len(pts) > 40 and np.allclose(pts[:, 0] + 2 * pts[:, 1], 0.5)   # exact for a linear field
    cone = manifold._contour_segments(-np.hypot(xx, yy), xc, yc, -1.0)
    pts = cone[~np.isnan(cone[:, 0])]
    assert np.allclose(np.hypot(pts[:, 0], pts[:, 1]), 1.0, atol=0.01)    # a circle of radius 1
    assert len(manifold._contour_segments(np.zeros((5, 5)), xc[:5], yc[:5], 1.0)) == 0


def test_figures_at_15625_blocks_stay_small():
    n, block_len = 15_625, 64
    t = n * block_len
    rng = np.random.default_rng(0)
    series = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, t)))
    times = pd.date_range("2020-01-01", periods=t, freq="min").to_numpy()
    starts = np.arange(n) * block_len
    labels = rng.integers(0, 4, n)                           # worst case for the timeline: runs of ~1 block
    coords = rng.standard_normal((n, 2))
    sizes = {
        "projection": manifold.projection_figure(coords, labels, categorical=True, color_title="regime",
                                                 selected=list(range(0, n, 97)), focus=3, neighbours=[5, 7]),
        "projection (colour scale)": manifold.projection_figure(coords, np.arange(n), categorical=False,
                                                                color_title="block"),
        "price": manifold.price_figure(series, starts, block_len, x=times, highlight=list(range(0, n, 97)),
                                       focus=3, neighbours=[5, 7], split=int(t * 0.8)),
        "timeline": timeline.timeline_figure(series, starts, block_len, rng.permutation(n), labels, times=times),
    }
    kb = {name: len(fig.to_json()) / 1024 for name, fig in sizes.items()}
    # Measured: projection 340 / 420 kB (3.2 MB with hover strings), price 560 kB (32.9 MB unstrided),
    # timeline ~1.6 MB at random labels (3.8 MB with N bars).
    limits = {"projection": 600, "projection (colour scale)": 700, "price": 900, "timeline": 2400}
    assert all(kb[k] <= limits[k] for k in kb), kb


def test_pooled_similarity_equals_the_mean_of_each_tile_of_the_full_matrix():
    z = np.random.default_rng(6).standard_normal((23, 5))
    order = np.random.default_rng(7).permutation(23)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    full = zn @ zn.T
    chrono, pseudo, b = timeline.similarity_matrices(z, order, max_cells=5)
    assert b == 5 and chrono.shape == (5, 5)                      # tiles of 5, the last of 3
    edges = [(i, min(i + 5, 23)) for i in range(0, 23, 5)]
    ref = np.array([[full[a:b_, c:d].mean() for c, d in edges] for a, b_ in edges])
    po = full[np.ix_(order, order)]
    ref_p = np.array([[po[a:b_, c:d].mean() for c, d in edges] for a, b_ in edges])
    assert np.allclose(chrono, ref) and np.allclose(pseudo, ref_p)
